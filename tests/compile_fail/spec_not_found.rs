// The path is relative to the crate or one of its ancestors.
vit_runtime::model!("tests/compile_fail/specs/no_such_spec.yaml");

fn main() {}
