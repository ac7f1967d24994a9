// A misspelt key: `hedas` for `heads`.
vit_runtime::model!("tests/compile_fail/specs/unknown_key.yaml");

fn main() {}
