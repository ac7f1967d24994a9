// A dropout of 1 drops everything.
vit_runtime::model!("tests/compile_fail/specs/dropout_too_large.yaml");

fn main() {}
