// A misspelt layer.
vit_runtime::model!("tests/compile_fail/specs/unknown_cnn_layer.yaml");

fn main() {}
