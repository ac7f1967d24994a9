// 5x5 patches do not tile a 28x28 image.
vit_runtime::model!("tests/compile_fail/specs/patch_not_dividing_image.yaml");

fn main() {}
