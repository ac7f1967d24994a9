// A 17x17 kernel on a 14x14 map.
vit_runtime::model!("tests/compile_fail/specs/conv_kernel_too_large.yaml");

fn main() {}
