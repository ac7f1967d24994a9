//! One split (train or test) of a data set: images kept as `u8`, paired with their labels.
//!
//! Images stay bytes until a batch is built: 60,000 MNIST images are 47 MB as `u8` but
//! 188 MB as `f32`, and augmentation works on the raw pixels anyway. An image is
//! `channels x rows x cols` bytes, channel after channel, the layout of the CHW tensors
//! the batches become.

use std::path::Path;

use super::error::DataError;
use super::idx::{self, IdxFile, IdxKind};
use super::report::DataReport;
use super::shape::ImageShape;

/// Every data set of the MNIST family has ten classes.
pub const NUM_CLASSES: usize = 10;

/// Labels are bytes: no split has more classes than this.
pub const MAX_CLASSES: usize = 256;

/// Images and labels of one split, checked to belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    shape: ImageShape,
    classes: usize,
}

impl Split {
    /// Pairs an images file with a labels file: same count, every label below
    /// [`NUM_CLASSES`]; the images have one channel.
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
        if let Some((index, label)) = first_out_of_range(labels.data(), NUM_CLASSES) {
            return Err(DataError::LabelOutOfRange {
                path: labels.path().to_path_buf(),
                index,
                label,
                classes: NUM_CLASSES,
            });
        }
        let (height, width) = match *images.dims() {
            [_, rows, cols] => (rows, cols),
            _ => (0, 0), // unreachable: the reader enforces rank 3 for images
        };
        Ok(Split {
            pixels: images.into_data(),
            labels: labels.into_data(),
            shape: ImageShape {
                channels: 1,
                height,
                width,
            },
            classes: NUM_CLASSES,
        })
    }

    /// Reads a pair of IDX files (raw or .gz) without checking them against the official
    /// checksums: for files of your own; [`super::load`] is the way to the real data sets.
    pub fn from_files(images: &Path, labels: &Path) -> Result<Self, DataError> {
        let images = idx::read_file(images, IdxKind::Images)?;
        let labels = idx::read_file(labels, IdxKind::Labels)?;
        Self::from_idx(images, labels)
    }

    /// Decoded images, `labels.len()` of `shape` one after the other, in `classes`
    /// classes: the bytes must make whole images and every label must be below `classes`.
    pub fn from_images(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        shape: ImageShape,
        classes: usize,
    ) -> Result<Self, DataError> {
        if shape.channels == 0 || shape.height == 0 || shape.width == 0 {
            return Err(DataError::InvalidShape {
                shape,
                reason: "every dimension must be at least 1",
            });
        }
        if classes > MAX_CLASSES {
            return Err(DataError::TooManyClasses { classes });
        }
        if labels.len().checked_mul(shape.elements()) != Some(pixels.len()) {
            return Err(DataError::PixelCount {
                n_bytes: pixels.len(),
                n_labels: labels.len(),
                shape,
            });
        }
        if let Some((index, label)) = first_out_of_range(&labels, classes) {
            return Err(DataError::LabelRange {
                index,
                label,
                classes,
            });
        }
        Ok(Split {
            pixels,
            labels,
            shape,
            classes,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `channels x rows x cols` of every image.
    pub fn shape(&self) -> ImageShape {
        self.shape
    }

    pub fn channels(&self) -> usize {
        self.shape.channels
    }

    pub fn rows(&self) -> usize {
        self.shape.height
    }

    pub fn cols(&self) -> usize {
        self.shape.width
    }

    /// Number of classes the labels range over (`0..classes`).
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Pixels of example `i` (`channels * rows * cols` bytes, channel after channel,
    /// each row-major), if it exists.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.shape.elements();
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
            self.pixels.truncate(n * self.shape.elements());
        }
    }

    /// How many examples each class has: one count per class, `classes()` in all.
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut hist = vec![0; self.classes];
        for &l in &self.labels {
            // Labels were range-checked when the split was built.
            if let Some(h) = hist.get_mut(usize::from(l)) {
                *h += 1;
            }
        }
        hist
    }
}

/// The first label `>= classes`, with its index.
fn first_out_of_range(labels: &[u8], classes: usize) -> Option<(usize, u8)> {
    labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= classes)
        .map(|(i, &l)| (i, l))
}

/// Train and test splits of a data set, with where they came from.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Split,
    pub test: Split,
    /// Class `i` is `classes[i]`: MNIST's digits, Fashion-MNIST's names, or an image
    /// folder's folder names.
    pub classes: Vec<String>,
    pub report: DataReport,
}

impl Splits {
    /// Keeps the first `train` / `test` examples (the CLI's `--limit-train`,
    /// `--limit-test`); `None` keeps a split whole.
    pub fn limit(mut self, train: Option<usize>, test: Option<usize>) -> Self {
        if let Some(n) = train {
            self.train.truncate(n);
        }
        if let Some(n) = test {
            self.test.truncate(n);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RGB_2X2: ImageShape = ImageShape {
        channels: 3,
        height: 2,
        width: 2,
    };

    #[test]
    fn decoded_images_are_whole_channel_major_images() {
        let pixels: Vec<u8> = (0..24).collect();
        let split = Split::from_images(pixels, vec![0, 4], RGB_2X2, 5).expect("valid");
        assert_eq!(split.channels(), 3);
        assert_eq!(split.image(1), Some(&(12..24).collect::<Vec<u8>>()[..]));
        assert_eq!(split.image(2), None);
        assert_eq!(split.label_histogram(), [1, 0, 0, 0, 1]);
    }

    #[test]
    fn decoded_images_must_fill_whole_images_and_labels_fit_the_classes() {
        let err = Split::from_images(vec![0; 23], vec![0, 1], RGB_2X2, 5).unwrap_err();
        assert!(matches!(err, DataError::PixelCount { .. }), "{err}");
        let err = Split::from_images(vec![0; 24], vec![0, 5], RGB_2X2, 5).unwrap_err();
        assert!(err.to_string().contains("label 5 of example 1"), "{err}");
        let err = Split::from_images(vec![], vec![], RGB_2X2, 257).unwrap_err();
        assert!(matches!(err, DataError::TooManyClasses { .. }), "{err}");
    }

    #[test]
    fn truncate_keeps_whole_images() {
        let pixels: Vec<u8> = (0..36).collect();
        let mut split = Split::from_images(pixels, vec![0, 1, 2], RGB_2X2, 3).expect("valid");
        split.truncate(2);
        assert_eq!((split.len(), split.pixels().len()), (2, 24));
        assert_eq!(split.label_histogram(), [1, 1, 0]);
    }
}
