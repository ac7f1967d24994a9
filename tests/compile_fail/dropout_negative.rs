// A probability cannot be negative.
vit_runtime::model!("tests/compile_fail/specs/dropout_negative.yaml");

fn main() {}
