// A 16x16 pool on a 14x14 map.
vit_runtime::model!("tests/compile_fail/specs/pool_too_large.yaml");

fn main() {}
