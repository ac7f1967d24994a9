//! `cargo bench -p vit-runtime --bench data_loader`: how long loading (decode + SHA-256)
//! takes, and how many augmented batches of 128 per second the loader can deliver, to
//! compare with the ViT's training step time, which it measures too (after warm-up, as
//! the training loop runs it). The loader's functions live in
//! `vit_runtime::data::bench`, so the CLI's `bench` measures the same thing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use vit_runtime::data::bench::{time_load, vit_loader_throughput};
use vit_runtime::data::{DataSource, ImageShape};
use vit_runtime::recipe::Dataset;

const LOAD_REPEATS: usize = 3;
const EPOCHS: usize = 5;

fn main() -> ExitCode {
    // `cargo bench` runs in the package folder; the data live at the workspace root.
    let data_dir = std::env::var_os("VIT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"));
    let source = DataSource {
        download: false,
        ..DataSource::new(Some(&data_dir))
    };
    println!(
        "data loader benchmark ({} CPU threads)",
        available_threads()
    );
    println!("{:<16} {:<44} {:>12}", "data set", "measure", "value");
    let mut fashion_batches_per_s = 0.0;
    for dataset in [Dataset::Mnist, Dataset::FashionMnist] {
        let mut times = Vec::new();
        let mut train = None;
        for _ in 0..LOAD_REPEATS {
            match time_load(&source, dataset, ImageShape::MNIST, 10) {
                Ok((splits, took)) => {
                    times.push(took);
                    train = Some(splits.train);
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        times.sort_unstable();
        let load = times[times.len() / 2];
        let name = dataset.name();
        println!(
            "{name:<16} {:<44} {:>9.1} ms",
            format!("load+decode+verify 4 files (median of {LOAD_REPEATS})"),
            ms(load)
        );
        let Some(train) = train else {
            return ExitCode::FAILURE;
        };
        match vit_loader_throughput(Arc::new(train), EPOCHS) {
            Ok(t) => {
                if dataset == Dataset::FashionMnist {
                    fashion_batches_per_s = t.pipelined_batches_per_s;
                }
                println!(
                    "{name:<16} {:<44} {:>10.0} /s",
                    format!("batches of {}, crop 28 pad 2 + flip + norm", t.batch_size),
                    t.pipelined_batches_per_s
                );
                println!(
                    "{name:<16} {:<44} {:>9.3} ms",
                    format!(
                        "  (median of {} epochs x {} batches)",
                        t.epochs, t.batches_per_epoch
                    ),
                    1e3 / t.pipelined_batches_per_s
                );
                println!(
                    "{name:<16} {:<44} {:>9.3} ms",
                    "prepare one batch on the caller (median)",
                    ms(t.prepare_batch)
                );
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let step = vit_train_step();
    println!(
        "{:<16} {:<44} {:>9.1} ms",
        "vit",
        format!("training step, batch 128 (median of {STEPS})"),
        ms(step)
    );
    let margin = step.as_secs_f64() * fashion_batches_per_s;
    println!(
        "loader delivers a batch {margin:.0}x faster than the ViT trains on one (target: >= 20x)"
    );
    ExitCode::SUCCESS
}

const STEPS: usize = 10;

/// Median time of one ViT training step on a batch of 128: forward with dropout,
/// cross-entropy, backward and the AdamW update, as the training loop does it.
fn vit_train_step() -> Duration {
    use vit_runtime::dfdx::prelude::*;
    use vit_runtime::model::{ImageClassifier, ModelSpec};
    use vit_runtime::models::Vit;
    use vit_runtime::nn::Mode;
    use vit_runtime::train::{loss, optim::Optimizer};

    type M = Vit<f32, Cpu>;
    let dev = Cpu::seed_from_u64(0);
    let mut model = <M as BuildModule<Cpu, f32>>::build(&dev);
    let mut optimizer = Optimizer::new(M::RECIPE.optimizer);
    let mut grads = model.alloc_grads();
    let mut times = Vec::new();
    for step in 0..STEPS + 3 {
        let x: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, _> =
            dev.sample_normal_like(&(128, Const, Const, Const));
        let y: Tensor<(usize, Const<10>), f32, _> = dev.sample_uniform_like(&(128, Const));
        let started = std::time::Instant::now();
        let heads = model.heads(x.traced(grads), Mode::Train);
        grads = loss::cross_entropy(heads.class, y.softmax::<Axis<1>>()).backward();
        optimizer.update(&mut model, &grads, 5e-4);
        model.zero_grads(&mut grads);
        if step >= 3 {
            times.push(started.elapsed());
        }
    }
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
