// Two independent mistakes in one spec are both reported, each at its own line, and code
// that names the model's type reports nothing more: the type is defined as a stub.
vit_runtime::model!("tests/compile_fail/specs/two_errors.yaml");

type Model = TwoErrors<f32, vit_runtime::dfdx::tensor::Cpu>;

fn main() {
    let none: Option<Model> = None;
    assert!(none.is_none());
}
