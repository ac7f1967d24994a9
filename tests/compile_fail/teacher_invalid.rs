// The teacher spec itself is broken.
vit_runtime::model!("tests/compile_fail/specs/teacher_invalid.yaml");

fn main() {}
