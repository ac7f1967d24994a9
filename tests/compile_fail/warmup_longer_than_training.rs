// The warm-up cannot outlast the training.
vit_runtime::model!("tests/compile_fail/specs/warmup_longer_than_training.yaml");

fn main() {}
