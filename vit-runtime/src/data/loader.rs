//! Deterministic batching with a background thread preparing the next batches.
//!
//! Reproducibility comes from deriving every random stream from a tuple, not from a
//! generator that advances as the run goes: the order of epoch `e` is a pure function of
//! `(seed, e)` and the augmentation of batch `b` a pure function of `(seed, e, b)`. A run
//! resumed at the start of epoch `e` therefore sees the same batches as an uninterrupted
//! one, however many threads prepared them.

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::augment::{self, Normalizer, Transform};
use super::batch::Batch;
use super::error::DataError;
use super::split::Split;
use crate::recipe::{Augment, Normalize, Recipe};

/// Stream tags keeping the shuffle and augmentation generators independent.
const SHUFFLE_STREAM: u64 = 1;
const AUGMENT_STREAM: u64 = 2;

/// How a [`Loader`] batches a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    pub seed: u64,
    /// Shuffle the order every epoch (training) or keep the file order (evaluation).
    pub shuffle: bool,
    pub augment: Augment,
    pub normalize: Normalize,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
}

impl LoaderConfig {
    /// Training: shuffled, augmented as the recipe says.
    pub fn train(recipe: &Recipe) -> Self {
        LoaderConfig {
            batch_size: recipe.batch_size,
            seed: recipe.seed,
            shuffle: true,
            augment: recipe.augment,
            normalize: recipe.normalize,
            prefetch: 4,
        }
    }

    /// Evaluation: file order, no augmentation, same normalisation.
    pub fn eval(recipe: &Recipe) -> Self {
        LoaderConfig {
            shuffle: false,
            augment: Augment::default(),
            ..Self::train(recipe)
        }
    }
}

/// Batches of a split; cheap to clone (the split is shared).
#[derive(Debug, Clone)]
pub struct Loader {
    split: Arc<Split>,
    config: LoaderConfig,
    norm: Normalizer,
    out_dims: (usize, usize),
}

impl Loader {
    /// Checks the configuration against the split's images: batch size, crop size, and a
    /// normalisation with one value (or one per channel) of usable means and stds.
    pub fn new(split: Arc<Split>, config: LoaderConfig) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::Config("batch size must be at least 1".into()));
        }
        let norm = Normalizer::new(config.normalize, split.channels())?;
        let out_dims = augment::output_dims(&config.augment, split.rows(), split.cols())
            .map_err(DataError::Config)?;
        Ok(Loader {
            norm,
            split,
            config,
            out_dims,
        })
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches per epoch; the last one may be partial (it is kept, not dropped).
    pub fn len(&self) -> usize {
        self.split.len().div_ceil(self.config.batch_size)
    }

    pub fn is_empty(&self) -> bool {
        self.split.is_empty()
    }

    /// `(channels, height, width)` of the images in the batches.
    pub fn image_dims(&self) -> (usize, usize, usize) {
        (self.split.channels(), self.out_dims.0, self.out_dims.1)
    }

    /// Example indices in the order of `epoch`: a pure function of `(seed, epoch)`.
    pub fn order(&self, epoch: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.split.len() as u32).collect();
        if self.config.shuffle {
            order.shuffle(&mut rng_for(self.config.seed, epoch, 0, SHUFFLE_STREAM));
        }
        order
    }

    /// Batch `index` of `epoch`, prepared on the calling thread; `None` past the end.
    pub fn batch(&self, epoch: usize, index: usize) -> Option<Batch> {
        let order = self.order(epoch);
        let chunk = order.chunks(self.config.batch_size).nth(index)?;
        Some(self.prepare(epoch, index, chunk))
    }

    /// Iterates over the batches of `epoch` while a background thread prepares the next
    /// ones (up to `prefetch` ahead). Dropping the iterator stops the thread.
    pub fn epoch(&self, epoch: usize) -> Epoch {
        let (tx, rx) = mpsc::sync_channel(self.config.prefetch.max(1));
        let loader = self.clone();
        let handle = std::thread::spawn(move || {
            let order = loader.order(epoch);
            for (index, chunk) in order.chunks(loader.config.batch_size).enumerate() {
                if tx.send(loader.prepare(epoch, index, chunk)).is_err() {
                    return; // the consumer is gone
                }
            }
        });
        Epoch {
            rx: Some(rx),
            handle: Some(handle),
            remaining: self.len(),
        }
    }

    /// Builds the batch of the examples `chunk` (batch `index` of `epoch`).
    pub(crate) fn prepare(&self, epoch: usize, index: usize, chunk: &[u32]) -> Batch {
        let shape = self.split.shape();
        let (channels, out_rows, out_cols) = self.image_dims();
        let per_image = channels * out_rows * out_cols;
        let mut pixels = vec![0.0f32; chunk.len() * per_image];
        let mut labels = Vec::with_capacity(chunk.len());
        let augmenting = self.config.augment != Augment::default();
        let mut rng = rng_for(self.config.seed, epoch, index, AUGMENT_STREAM);
        for (&i, out) in chunk.iter().zip(pixels.chunks_exact_mut(per_image)) {
            let i = i as usize;
            // One draw per example, whatever its channel count: all channels move alike,
            // and a grey data set sees the random stream it always saw.
            let transform = if augmenting {
                augment::draw(&mut rng, &self.config.augment, shape.height, shape.width)
            } else {
                Transform::NONE
            };
            if let (Some(src), Some(label)) = (self.split.image(i), self.split.label(i)) {
                augment::write_example(src, shape, &transform, &self.norm, out);
                labels.push(label);
            }
        }
        Batch {
            pixels,
            labels,
            indices: chunk.to_vec(),
            channels,
            height: out_rows,
            width: out_cols,
        }
    }
}

/// A generator seeded by the whole tuple: distinct tuples never share a stream.
fn rng_for(seed: u64, epoch: usize, batch: usize, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (slot, word) in key
        .chunks_exact_mut(8)
        .zip([seed, epoch as u64, batch as u64, stream])
    {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// The batches of one epoch, in order, from the background thread.
#[derive(Debug)]
pub struct Epoch {
    rx: Option<Receiver<Batch>>,
    handle: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Iterator for Epoch {
    /// An error only if the background thread died (it panicked).
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let received = self.rx.as_ref()?.recv();
        match received {
            Ok(batch) => {
                self.remaining -= 1;
                Some(Ok(batch))
            }
            Err(_) => {
                self.remaining = 0;
                Some(Err(DataError::LoaderStopped))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        // Closing the channel first makes a blocked `send` fail, so the join cannot hang.
        drop(self.rx.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::{self, IdxKind};
    use std::path::Path;

    /// `n` 2 x 2 images whose pixels all equal their index, labels `index % 10`.
    fn split(n: u8) -> Arc<Split> {
        let mut images = vec![0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 2, 0, 0, 0, 2];
        let mut labels = vec![0, 0, 8, 1, 0, 0, 0, n];
        for i in 0..n {
            images.extend([i; 4]);
            labels.push(i % 10);
        }
        let images = idx::decode(&images, Path::new("images"), IdxKind::Images);
        let labels = idx::decode(&labels, Path::new("labels"), IdxKind::Labels);
        Arc::new(Split::from_idx(images.expect("valid"), labels.expect("valid")).expect("valid"))
    }

    fn config(batch_size: usize) -> LoaderConfig {
        LoaderConfig {
            batch_size,
            seed: 9,
            shuffle: true,
            augment: Augment {
                random_crop: Some((2, 1)),
                horizontal_flip: true,
            },
            normalize: Normalize::IDENTITY,
            prefetch: 2,
        }
    }

    #[test]
    fn order_is_a_permutation_fixed_by_seed_and_epoch() {
        let loader = Loader::new(split(50), config(8)).expect("valid");
        let mut sorted = loader.order(4);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<u32>>());
        assert_eq!(loader.order(4), loader.clone().order(4));
        assert_ne!(loader.order(4), loader.order(5));
    }

    #[test]
    fn last_partial_batch_is_kept() {
        let loader = Loader::new(split(50), config(8)).expect("valid");
        assert_eq!(loader.len(), 7);
        let sizes: Vec<usize> = loader.epoch(0).map(|b| b.expect("batch").len()).collect();
        assert_eq!(sizes, [8, 8, 8, 8, 8, 8, 2]);
    }

    #[test]
    fn background_batches_equal_batches_built_on_the_caller() {
        let loader = Loader::new(split(50), config(8)).expect("valid");
        for (i, batch) in loader.epoch(3).enumerate() {
            assert_eq!(Some(batch.expect("batch")), loader.batch(3, i));
        }
        assert_eq!(loader.batch(3, 7), None);
    }

    #[test]
    fn labels_and_pixels_follow_their_example() {
        let loader = Loader::new(split(50), config(8)).expect("valid");
        let batch = loader.batch(1, 2).expect("batch 2");
        for (k, (&i, &label)) in batch.indices().iter().zip(batch.labels()).enumerate() {
            assert_eq!(u32::from(label), i % 10);
            // Every pixel is the example's index (/255) or padding (0).
            let px = &batch.pixels()[k * 4..(k + 1) * 4];
            assert!(
                px.iter().all(|&v| v == 0.0 || v == i as f32 / 255.0),
                "{px:?}"
            );
        }
    }

    #[test]
    fn dropping_an_epoch_midway_stops_its_thread() {
        let loader = Loader::new(split(50), config(1)).expect("valid");
        let mut epoch = loader.epoch(0);
        assert!(epoch.next().is_some());
        drop(epoch); // joins the producer, which is blocked on a full channel: must not hang
    }

    #[test]
    fn invalid_configs_are_errors() {
        let bad_batch = LoaderConfig {
            batch_size: 0,
            ..config(1)
        };
        assert!(Loader::new(split(5), bad_batch).is_err());
        let bad_crop = LoaderConfig {
            augment: Augment {
                random_crop: Some((5, 1)),
                horizontal_flip: false,
            },
            ..config(1)
        };
        assert!(Loader::new(split(5), bad_crop).is_err());
    }

    /// `n` RGB 2 x 2 images: channel `c` of image `i` holds `i + 100 * c`; labels `i % 3`.
    fn rgb_split(n: u8) -> Arc<Split> {
        let pixels = (0..n)
            .flat_map(|i| (0..3u8).flat_map(move |c| [i + 100 * c; 4]))
            .collect();
        let labels = (0..n).map(|i| i % 3).collect();
        let shape = crate::data::shape::ImageShape {
            channels: 3,
            height: 2,
            width: 2,
        };
        Arc::new(Split::from_images(pixels, labels, shape, 3).expect("valid"))
    }

    #[test]
    fn colour_batches_keep_channels_aligned_and_normalise_each() {
        let config = LoaderConfig {
            normalize: Normalize {
                mean: &[0.0, 0.5, 1.0],
                std: &[1.0, 0.5, 0.25],
            },
            ..config(4)
        };
        let loader = Loader::new(rgb_split(20), config).expect("valid");
        assert_eq!(loader.image_dims(), (3, 2, 2));
        let norm = Normalizer::new(config.normalize, 3).expect("valid");
        let batch = loader.batch(0, 1).expect("batch 1");
        assert_eq!(batch.image_dims(), (3, 2, 2));
        assert_eq!(batch.pixels().len(), 4 * 3 * 4);
        for (k, &i) in batch.indices().iter().enumerate() {
            let image = &batch.pixels()[k * 12..(k + 1) * 12];
            let planes: Vec<&[f32]> = image.chunks_exact(4).collect();
            for (c, plane) in planes.iter().enumerate() {
                let (pad, px) = (norm.apply(c, 0), norm.apply(c, i as u8 + 100 * c as u8));
                assert!(plane.iter().all(|&v| v == pad || v == px), "{plane:?}");
            }
            // The crop moved the three channels alike: padding sits at the same places.
            let padded = |c: usize| -> Vec<bool> {
                let pad = norm.apply(c, 0);
                planes[c].iter().map(|&v| v == pad).collect()
            };
            if i != 0 {
                assert_eq!(padded(0), padded(1), "example {i}");
                assert_eq!(padded(0), padded(2), "example {i}");
            }
        }
    }

    #[test]
    fn normalisation_that_does_not_fit_the_channels_is_a_config_error() {
        let two = LoaderConfig {
            normalize: Normalize {
                mean: &[0.5, 0.5],
                std: &[0.5, 0.5],
            },
            ..config(4)
        };
        let err = Loader::new(rgb_split(3), two).unwrap_err();
        assert!(matches!(err, DataError::Config(_)), "{err}");
        let zero = LoaderConfig {
            normalize: Normalize {
                mean: &[0.5],
                std: &[0.0],
            },
            ..config(4)
        };
        assert!(matches!(
            Loader::new(split(3), zero),
            Err(DataError::Config(_))
        ));
    }
}
