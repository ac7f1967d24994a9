//! Timings of the data pipeline, shared by `benches/data_loader.rs` and the CLI's `bench`,
//! so that the figures compared with a training step are measured the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::DataError;
use super::loader::{Loader, LoaderConfig};
use super::shape::ImageShape;
use super::source::DataSource;
use super::split::{Split, Splits};
use crate::recipe::{Augment, Dataset, Normalize};

/// The ViT recipes' training augmentation: `RandomCrop(28, padding=2)`, flip,
/// `Normalize(0.5, 0.5)`, batches of 128.
pub fn vit_train_config(seed: u64) -> LoaderConfig {
    LoaderConfig {
        batch_size: 128,
        seed,
        shuffle: true,
        augment: Augment {
            random_crop: Some((28, 2)),
            horizontal_flip: true,
        },
        normalize: Normalize {
            mean: &[0.5],
            std: &[0.5],
        },
        prefetch: 4,
    }
}

/// Loads (finds, decodes, verifies) a data set, as a model of input `shape` with `classes`
/// classes takes it, and says how long it took.
pub fn time_load(
    source: &DataSource,
    dataset: Dataset,
    shape: ImageShape,
    classes: usize,
) -> Result<(Splits, Duration), DataError> {
    let start = Instant::now();
    let splits = source.load(dataset, shape, classes)?;
    Ok((splits, start.elapsed()))
}

/// Batches per second a loader delivers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub batch_size: usize,
    pub batches_per_epoch: usize,
    pub epochs: usize,
    /// Median over epochs of batches/s through the background thread, the consumer doing
    /// nothing: the ceiling the loader puts on training speed.
    pub pipelined_batches_per_s: f64,
    /// Median time to prepare one batch on the calling thread (no prefetch): the CPU the
    /// loader takes away from training per step.
    pub prepare_batch: Duration,
}

/// Measures `loader` over `epochs` epochs (at least 1).
pub fn loader_throughput(loader: &Loader, epochs: usize) -> Result<Throughput, DataError> {
    let epochs = epochs.max(1);
    let mut rates = Vec::with_capacity(epochs);
    for epoch in 0..epochs {
        let start = Instant::now();
        let mut batches = 0usize;
        for batch in loader.epoch(epoch) {
            std::hint::black_box(batch?);
            batches += 1;
        }
        rates.push(batches as f64 / start.elapsed().as_secs_f64().max(1e-9));
    }
    let mut prep = Vec::new();
    let order = loader.order(0);
    for (index, chunk) in order.chunks(loader.config().batch_size).enumerate() {
        let start = Instant::now();
        std::hint::black_box(loader.prepare(0, index, chunk));
        prep.push(start.elapsed());
    }
    Ok(Throughput {
        batch_size: loader.config().batch_size,
        batches_per_epoch: loader.len(),
        epochs,
        pipelined_batches_per_s: median_f64(&mut rates),
        prepare_batch: median(&mut prep),
    })
}

/// [`loader_throughput`] with [`vit_train_config`] on a training split.
pub fn vit_loader_throughput(train: Arc<Split>, epochs: usize) -> Result<Throughput, DataError> {
    let loader = Loader::new(train, vit_train_config(0))?;
    loader_throughput(&loader, epochs)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_f64(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
