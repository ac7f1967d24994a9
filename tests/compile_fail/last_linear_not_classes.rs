// 10 classes need 10 outputs.
vit_runtime::model!("tests/compile_fail/specs/last_linear_not_classes.yaml");

fn main() {}
