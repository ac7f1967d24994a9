//! One split (train or test) of a data set: images kept as `u8`, paired with their labels.
//!
//! Images stay bytes until a batch is built: 60,000 MNIST images are 47 MB as `u8` but
//! 188 MB as `f32`, and augmentation works on the raw pixels anyway.

use std::path::Path;

use super::idx::{self, IdxFile, IdxKind};
use super::DataError;

/// Every data set of the MNIST family has ten classes.
pub const NUM_CLASSES: usize = 10;

/// Images and labels of one split, checked to belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Split {
    /// Pairs an images file with a labels file: same count, every label below
    /// [`NUM_CLASSES`].
    pub fn from_idx(images: IdxFile, labels: IdxFile) -> Result<Self, DataError> {
        let (n_images, n_labels) = (images.count(), labels.count());
        if n_images != n_labels {
            return Err(DataError::CountMismatch {
                images: images.path().to_path_buf(),
                n_images,
                labels: labels.path().to_path_buf(),
                n_labels,
            });
        }
        if let Some((index, &label)) = labels
            .data()
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
        {
            return Err(DataError::LabelOutOfRange {
                path: labels.path().to_path_buf(),
                index,
                label,
                classes: NUM_CLASSES,
            });
        }
        let (rows, cols) = match *images.dims() {
            [_, rows, cols] => (rows, cols),
            _ => (0, 0), // unreachable: the reader enforces rank 3 for images
        };
        Ok(Split {
            pixels: images.into_data(),
            labels: labels.into_data(),
            rows,
            cols,
        })
    }

    /// Reads a pair of IDX files (raw or .gz) without checking them against the official
    /// checksums: for files of your own; [`super::load`] is the way to the real data sets.
    pub fn from_files(images: &Path, labels: &Path) -> Result<Self, DataError> {
        let images = idx::read_file(images, IdxKind::Images)?;
        let labels = idx::read_file(labels, IdxKind::Labels)?;
        Self::from_idx(images, labels)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels of example `i` (`rows * cols` bytes, row-major), if it exists.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.rows * self.cols;
        let start = i.checked_mul(n)?;
        self.pixels.get(start..start.checked_add(n)?)
    }

    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.get(i).copied()
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// All pixels, example after example.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Keeps the first `n` examples (the CLI's `--limit-train` / `--limit-test`); a larger
    /// `n` keeps everything.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * self.rows * self.cols);
        }
    }

    /// How many examples each class has.
    pub fn label_histogram(&self) -> [usize; NUM_CLASSES] {
        let mut hist = [0; NUM_CLASSES];
        for &l in &self.labels {
            // Labels were range-checked when the split was built.
            if let Some(h) = hist.get_mut(usize::from(l)) {
                *h += 1;
            }
        }
        hist
    }
}
