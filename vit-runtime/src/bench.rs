//! Throughput and memory of a model: the figures `vit-runtime bench` compares with PyTorch.
//!
//! The same work as the peer's benchmark (`bench/pytorch/bench.py`): data already in memory,
//! a training step is forward (training mode) + loss + backward + optimiser update (DeiT:
//! with the teacher's forward), inference is an evaluation-mode forward of a large batch.
//! Each figure is the median over timed steps after warm-up steps.
use crate::device::SeededDevice;
use crate::model::ImageClassifier;
use crate::train::{loss, optim::Optimizer, training_loss};
use dfdx::prelude::*;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    pub train_batch: usize,
    pub infer_batch: usize,
    pub warmup: usize,
    pub steps: usize,
}

/// One model's figures, printed as a JSON line by `vit-runtime bench --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub device: String,
    /// Threads of the pool the kernels and matmuls run on (`RAYON_NUM_THREADS`).
    pub threads: usize,
    pub train_batch: usize,
    pub infer_batch: usize,
    /// Training images per second (median step).
    pub train_images_per_sec: f64,
    /// Inference images per second (median batch).
    pub infer_images_per_sec: f64,
    /// Peak resident memory of the process so far, in bytes (Linux; 0 elsewhere).
    pub peak_rss_bytes: u64,
}

/// Measures `M` (distilling from `teacher` when given) on random inputs.
pub fn measure<M, Teacher, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    config: BenchConfig,
    teacher: Option<&Teacher>,
) -> anyhow::Result<BenchReport>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
    Teacher: ImageClassifier<C, H, W, K, D>,
{
    let dev = D::seeded(0)?;
    let mut model = M::build(&dev);
    let teacher = teacher.map(|t| t.clone().to_device(&dev));
    let mut optimizer = Optimizer::new(M::RECIPE.optimizer);
    let mut grads = model.alloc_grads();
    let input = |batch: usize| -> Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D> {
        dev.sample_normal_like(&(batch, Const, Const, Const))
    };
    let labels: Tensor<(usize, Const<K>), f32, D> =
        loss::argmax_one_hot(&dev.sample_normal_like(&(config.train_batch, Const::<K>)));

    let rounds = config.warmup + config.steps.max(1);
    let mut train_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let x = input(config.train_batch);
        let started = Instant::now();
        let (loss, _) = training_loss(&mut model, teacher.as_ref(), x, labels.clone(), grads);
        std::hint::black_box(loss.as_vec());
        grads = loss.backward();
        optimizer.update(&mut model, &grads, M::RECIPE.optimizer.lr);
        model.zero_grads(&mut grads);
        // CUDA runs asynchronously: the step is done when its device is idle.
        dev.try_synchronize()
            .map_err(|e| anyhow::anyhow!("{} device: {e:?}", D::NAME))?;
        train_times.push(started.elapsed());
    }
    let mut infer_times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let x = input(config.infer_batch);
        let started = Instant::now();
        std::hint::black_box(model.predict(x).as_vec());
        infer_times.push(started.elapsed());
    }
    let train_step = median(train_times, config.warmup);
    let infer_step = median(infer_times, config.warmup);
    Ok(BenchReport {
        model: M::NAME.into(),
        device: D::NAME.into(),
        threads: rayon::current_num_threads(),
        train_batch: config.train_batch,
        infer_batch: config.infer_batch,
        train_images_per_sec: config.train_batch as f64 / train_step.as_secs_f64(),
        infer_images_per_sec: config.infer_batch as f64 / infer_step.as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Median of the timings after the first `warmup`.
fn median(mut times: Vec<Duration>, warmup: usize) -> Duration {
    let mut timed = times.split_off(warmup.min(times.len() - 1));
    timed.sort_unstable();
    timed[timed.len() / 2]
}

/// `VmHWM` of `/proc/self/status`: the peak resident set size.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
