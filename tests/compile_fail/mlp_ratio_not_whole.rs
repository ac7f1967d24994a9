// 1.3 * 64 is not a whole MLP size.
vit_runtime::model!("tests/compile_fail/specs/mlp_ratio_not_whole.yaml");

fn main() {}
