// The first conv gives 8 channels, not 6.
vit_runtime::model!("tests/compile_fail/specs/conv_in_mismatch.yaml");

fn main() {}
