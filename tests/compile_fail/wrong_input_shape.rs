// A correct spec, misused: LightViT takes 1x28x28 images, so a batch of 32x32 ones is a
// type error at compile time rather than a shape panic at run time.
use vit_runtime::dfdx::prelude::*;

vit_runtime::model!("models/lightvit.yaml");

fn main() {
    let dev = Cpu::default();
    let model: Lightvit<f32, Cpu> = BuildModule::build(&dev);
    let images: Tensor<Rank4<8, 1, 32, 32>, f32, Cpu> = dev.zeros();
    let _logits = model.forward(images);
}
