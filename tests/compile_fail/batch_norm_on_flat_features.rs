// A batch norm of feature maps after the features are flat.
vit_runtime::model!("tests/compile_fail/specs/batch_norm_on_flat_features.yaml");

fn main() {}
