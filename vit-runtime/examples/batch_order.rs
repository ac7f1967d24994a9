//! Writes the order in which `vit-runtime train` visits the training images, so that
//! another framework can replay a run batch for batch (`bench/replay.py` does, with
//! PyTorch): epoch after epoch, each image's index in the training file as a
//! little-endian u32. The order depends only on the seed, the epoch and the split.
//!
//! Usage: cargo run --release --example batch_order -- <mnist|fashion_mnist> <seed> <epochs> <out>
use anyhow::{bail, Context};
use std::sync::Arc;
use vit_runtime::data::{self, ImageShape, Loader, LoaderConfig};
use vit_runtime::recipe::{Augment, Dataset, Normalize};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dataset, seed, epochs, out] = args.as_slice() else {
        bail!("usage: batch_order <mnist|fashion_mnist> <seed> <epochs> <out>");
    };
    let dataset = [Dataset::Mnist, Dataset::FashionMnist]
        .into_iter()
        .find(|d| d.name() == dataset)
        .with_context(|| format!("unknown data set `{dataset}`"))?;
    let seed: u64 = seed.parse().context("seed")?;
    let epochs: usize = epochs.parse().context("epochs")?;
    let config = LoaderConfig {
        batch_size: 1, // the order does not depend on it
        seed,
        shuffle: true,
        augment: Augment::default(),
        normalize: Normalize::IDENTITY,
        prefetch: 1,
    };
    let train = data::load(dataset, None, ImageShape::MNIST, 10)?.train;
    let loader = Loader::new(Arc::new(train), config)?;
    let bytes: Vec<u8> = (0..epochs)
        .flat_map(|epoch| loader.order(epoch))
        .flat_map(u32::to_le_bytes)
        .collect();
    std::fs::write(out, bytes).with_context(|| format!("cannot write {out}"))?;
    Ok(())
}
