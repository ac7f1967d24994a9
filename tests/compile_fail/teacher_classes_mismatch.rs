// The teacher predicts 100 classes, the student 10.
vit_runtime::model!("tests/compile_fail/specs/teacher_classes_mismatch.yaml");

fn main() {}
