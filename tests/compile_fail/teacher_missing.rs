// There is no `resnet.yaml` next to this spec.
vit_runtime::model!("tests/compile_fail/specs/teacher_missing.yaml");

fn main() {}
