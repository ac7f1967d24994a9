// A per-channel normalisation needs one value for every channel (or one for all).
vit_runtime::model!("tests/compile_fail/specs/normalize_channels.yaml");

fn main() {}
