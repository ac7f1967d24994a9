// A linear layer on a feature map.
vit_runtime::model!("tests/compile_fail/specs/linear_without_flatten.yaml");

fn main() {}
