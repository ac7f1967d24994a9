// `depth` is required.
vit_runtime::model!("tests/compile_fail/specs/missing_key.yaml");

fn main() {}
