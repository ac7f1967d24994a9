// The teacher is `small_cnn`.
vit_runtime::model!("tests/compile_fail/specs/teacher_misspelt.yaml");

fn main() {}
