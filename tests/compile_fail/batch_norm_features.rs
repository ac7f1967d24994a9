// A batch norm whose `features` differ from the channels coming into it.
vit_runtime::model!("tests/compile_fail/specs/batch_norm_features.yaml");

fn main() {}
