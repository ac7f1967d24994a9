// The teacher sees RGB images, the student greyscale.
vit_runtime::model!("tests/compile_fail/specs/teacher_input_mismatch.yaml");

fn main() {}
