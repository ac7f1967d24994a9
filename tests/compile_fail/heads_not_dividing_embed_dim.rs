// 64 channels do not split into 3 heads.
vit_runtime::model!("tests/compile_fail/specs/heads_not_dividing_embed_dim.yaml");

fn main() {}
