// The teacher learnt Fashion-MNIST, the student learns MNIST.
vit_runtime::model!("tests/compile_fail/specs/teacher_other_dataset.yaml");

fn main() {}
