// MNIST images are 1x28x28.
vit_runtime::model!("tests/compile_fail/specs/dataset_image_size.yaml");

fn main() {}
