// `swish` is not an activation vit-rs has.
vit_runtime::model!("tests/compile_fail/specs/unknown_activation.yaml");

fn main() {}
