// A conv needs its sizes.
vit_runtime::model!("tests/compile_fail/specs/conv_missing_parameters.yaml");

fn main() {}
