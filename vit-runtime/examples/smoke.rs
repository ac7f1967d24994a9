use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{ImageClassifier, ModelSpec};
use vit_runtime::models::*;
use vit_runtime::nn::Mode;

fn main() {
    let dev = Cpu::seed_from_u64(0);
    let lv = <Lightvit<f32, Cpu> as BuildModule<Cpu, f32>>::build(&dev);
    println!(
        "lightvit params {} summary {}",
        lv.num_trainable_params(),
        Lightvit::<f32, Cpu>::SUMMARY.params
    );
    let x: Tensor<Rank4<3, 1, 28, 28>, f32, _> = dev.sample_normal();
    let y = lv.forward(x.clone());
    println!("{:?}", y.shape());
    let (_, maps) = lv.forward_with_attention(x.clone());
    println!("maps {:?}", maps.shape());
    let vit = <Vit<f32, Cpu> as BuildModule<Cpu, f32>>::build(&dev);
    println!(
        "vit params {} summary {}",
        vit.num_trainable_params(),
        Vit::<f32, Cpu>::SUMMARY.params
    );
    let t = std::time::Instant::now();
    let y = vit.heads(x.clone().traced(vit.alloc_grads()), Mode::Train);
    let loss = y.class.mean();
    let g = loss.backward();
    println!("vit fwd+bwd {:?}", t.elapsed());
    let _ = g;
    let deit = <Deit<f32, Cpu> as BuildModule<Cpu, f32>>::build(&dev);
    println!(
        "deit params {} summary {}",
        deit.num_trainable_params(),
        Deit::<f32, Cpu>::SUMMARY.params
    );
    let cnn = <Cnn<f32, Cpu> as BuildModule<Cpu, f32>>::build(&dev);
    println!(
        "cnn params {} summary {}",
        cnn.num_trainable_params(),
        Cnn::<f32, Cpu>::SUMMARY.params
    );
    let t = std::time::Instant::now();
    let y = cnn.forward(x.clone());
    println!("cnn {:?} {:?}", y.shape(), t.elapsed());
    let (_, m) = deit.forward_with_attention(x);
    println!("deit maps {:?}", m.shape());
}
