// 16 x 7 x 7 = 784 features reach the linear layer.
vit_runtime::model!("tests/compile_fail/specs/flatten_size_mismatch.yaml");

fn main() {}
