// The MLP size is given twice.
vit_runtime::model!("tests/compile_fail/specs/mlp_hidden_and_ratio.yaml");

fn main() {}
