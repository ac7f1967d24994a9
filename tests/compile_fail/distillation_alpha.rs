// Alpha weighs two losses: it is in [0, 1].
vit_runtime::model!("tests/compile_fail/specs/distillation_alpha.yaml");

fn main() {}
