// Sizes are at least 1.
vit_runtime::model!("tests/compile_fail/specs/zero_embed_dim.yaml");

fn main() {}
