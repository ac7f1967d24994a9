// A learning rate of 0 learns nothing.
vit_runtime::model!("tests/compile_fail/specs/zero_learning_rate.yaml");

fn main() {}
