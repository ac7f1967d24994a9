// No network at all.
vit_runtime::model!("tests/compile_fail/specs/neither_vit_nor_cnn.yaml");

fn main() {}
