//! vit-rs from Rust: a spec compiled into a type with `model!`, a forward pass whose shapes
//! the compiler checks, and a few steps of the library's training loop.
//!
//! Usage: cargo run --release -p vit-runtime --example from_rust [-- DATA_DIR]
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{ImageClassifier, ModelSpec};
use vit_runtime::train::{self, Existing, RunOptions};

// `Lightvit<E, D>`, compiled here from the spec (a typo in it fails this build, located in
// the YAML). A crate of your own does the same with its own `models/` folder, or compiles a
// whole folder with `vit_runtime::models!("models")`.
vit_runtime::model!("models/lightvit.yaml");

fn main() -> anyhow::Result<()> {
    let dev = Cpu::seed_from_u64(0);
    let model = Lightvit::<f32, Cpu>::build(&dev);
    println!(
        "{} has {} parameters",
        Lightvit::<f32, Cpu>::NAME,
        Lightvit::<f32, Cpu>::SUMMARY.params
    );

    // Two 1x28x28 images in, (2, 10) logits out; a 32x32 image would not compile.
    let images: Tensor<Rank4<2, 1, 28, 28>, f32, Cpu> = dev.sample_normal();
    let logits: Tensor<Rank2<2, 10>, f32, Cpu> = model.forward(images);
    println!("logits of random images: {:?}", logits.array());

    // The training loop of `vit-runtime train`, on 6,000 MNIST images for one epoch.
    let mut recipe = Lightvit::<f32, Cpu>::RECIPE;
    recipe.epochs = 1;
    let out = std::env::temp_dir().join("vit-rs-from-rust");
    let options = RunOptions {
        recipe,
        out_dir: out.clone(),
        // The example's own scratch run: replaced each time the example runs.
        existing: Existing::Overwrite,
        init_weights: None,
        data_dir: std::env::args().nth(1).map(Into::into),
        limit_train: Some(6000),
        limit_test: Some(500),
        log_every: 0,
        progress: false,
    };
    // The teacher type is the model's own `Teacher` (itself, for a model that does not distil).
    type M = Lightvit<f32, Cpu>;
    let report =
        train::train::<M, <M as ImageClassifier<1, 28, 28, 10, Cpu>>::Teacher, 1, 28, 28, 10, Cpu>(
            &options, None,
        )?;
    println!(
        "test accuracy after one epoch: {:.2}% ({} classes: {}); run in {}",
        100.0 * report.confusion.accuracy(),
        report.classes.len(),
        report.classes.join(" "),
        out.display()
    );
    Ok(())
}
