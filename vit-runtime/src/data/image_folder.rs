//! torchvision's `ImageFolder`: `<root>/train/<class>/*.png|jpg|jpeg` and the same class
//! folders under `<root>/test/`, decoded once into [`Split`]s.
//!
//! Classes are the sorted folder names of `train/` (byte order, which is the code point
//! order Python's `sorted` gives torchvision), so class `i` here is class `i` there; the
//! images of a class are taken in file name order, which makes a split, and so a run,
//! the same on every machine. Unlike torchvision, hidden entries (names starting with
//! `.`, such as `.DS_Store` or `.ipynb_checkpoints`) are skipped, and anything else that
//! is not where the layout expects it is an error naming it: a stray file is far more
//! often a mistake than a wish.
//!
//! All images are decoded up front, in parallel, into bytes of the model's shape: a
//! training run never decodes an image twice, and a broken file fails the load, not
//! epoch 7.
//!
//! - `layout`: walking the folders and checking them against the model;
//! - `decode`: one file to `C x H x W` bytes ([`read_image`], also for predictions).

mod decode;
mod layout;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

pub use decode::read_image;

use self::layout::SplitFiles;
use super::error::DataError;
use super::report::{DataReport, FolderReport, FolderSplitReport};
use super::shape::ImageShape;
use super::split::{Split, Splits, MAX_CLASSES};
use crate::recipe::Dataset;

/// Reads the image folder at `root` (already resolved against the data dir) as the model
/// takes it: `shape` images (`resize`d if they have another size, else refused) in
/// `classes` classes. `dataset` is recorded in the report.
pub fn load(
    dataset: Dataset,
    root: &Path,
    resize: bool,
    shape: ImageShape,
    classes: usize,
) -> Result<Splits, DataError> {
    decode::check_shape(shape)?;
    if classes > MAX_CLASSES {
        return Err(DataError::TooManyClasses { classes });
    }
    let layout = layout::scan(root, classes)?;
    let (train, train_report) = decode_split(&layout.train, shape, resize, classes)?;
    let (test, test_report) = decode_split(&layout.test, shape, resize, classes)?;
    Ok(Splits {
        train,
        test,
        classes: layout.classes.clone(),
        report: DataReport::ImageFolder(FolderReport {
            dataset,
            root: root.to_path_buf(),
            shape,
            resize,
            classes: layout.classes,
            train: train_report,
            test: test_report,
        }),
    })
}

/// What decoding some of a split's files gave: how many were resized, and the first
/// failure in file order among those decoded.
#[derive(Default)]
struct Outcome {
    resized: usize,
    error: Option<(usize, DataError)>,
}

impl Outcome {
    fn merge(mut self, other: Outcome) -> Outcome {
        self.resized += other.resized;
        self.error = match (self.error, other.error) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        self
    }
}

/// Decodes every file of a split, in parallel, straight into the split's pixel buffer.
fn decode_split(
    files: &SplitFiles,
    shape: ImageShape,
    resize: bool,
    classes: usize,
) -> Result<(Split, FolderSplitReport), DataError> {
    let per_image = shape.elements();
    let bytes = files
        .paths
        .len()
        .checked_mul(per_image)
        .ok_or(DataError::OutOfMemory {
            path: files.dir.clone(),
            bytes: usize::MAX,
        })?;
    let mut pixels = Vec::new();
    pixels
        .try_reserve_exact(bytes)
        .map_err(|_| DataError::OutOfMemory {
            path: files.dir.clone(),
            bytes,
        })?;
    pixels.resize(bytes, 0);
    // After a failure the remaining files are skipped: the load fails anyway, and a
    // large folder should not be decoded to the end to say so.
    let failed = AtomicBool::new(false);
    let outcome = pixels
        .par_chunks_mut(per_image)
        .zip(files.paths.par_iter())
        .enumerate()
        .map(|(i, (out, path))| {
            if failed.load(Ordering::Relaxed) {
                return Outcome::default();
            }
            match decode::decode_into(path, shape, resize, out) {
                Ok(resized) => Outcome {
                    resized: usize::from(resized),
                    error: None,
                },
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    Outcome {
                        resized: 0,
                        error: Some((i, e)),
                    }
                }
            }
        })
        .reduce(Outcome::default, Outcome::merge);
    if let Some((_, e)) = outcome.error {
        return Err(e);
    }
    let split = Split::from_images(pixels, files.labels.clone(), shape, classes)?;
    let report = FolderSplitReport {
        dir: files.dir.clone(),
        per_class: files.per_class.clone(),
        resized: outcome.resized,
    };
    Ok((split, report))
}
