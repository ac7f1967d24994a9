// `heads` must be a number.
vit_runtime::model!("tests/compile_fail/specs/wrong_type.yaml");

fn main() {}
