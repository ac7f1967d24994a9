// The distillation token needs a class token beside it.
vit_runtime::model!("tests/compile_fail/specs/distillation_mean_pooling.yaml");

fn main() {}
