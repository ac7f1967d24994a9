// The name must be snake_case (the type is its CamelCase).
vit_runtime::model!("tests/compile_fail/specs/invalid_name.yaml");

fn main() {}
