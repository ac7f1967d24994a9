// Not YAML: a value cannot hold a mapping on the same line.
vit_runtime::model!("tests/compile_fail/specs/yaml_syntax.yaml");

fn main() {}
