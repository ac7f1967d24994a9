// MNIST has 10 classes.
vit_runtime::model!("tests/compile_fail/specs/dataset_classes.yaml");

fn main() {}
