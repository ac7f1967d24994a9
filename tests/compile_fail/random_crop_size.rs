// The crop must give the model its 28x28 input.
vit_runtime::model!("tests/compile_fail/specs/random_crop_size.yaml");

fn main() {}
