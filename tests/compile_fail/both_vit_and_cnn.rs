// One spec, one network.
vit_runtime::model!("tests/compile_fail/specs/both_vit_and_cnn.yaml");

fn main() {}
