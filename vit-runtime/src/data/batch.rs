//! A host-side batch and its conversion into dfdx tensors on the caller's device.
//!
//! Batches are prepared as plain `Vec<f32>` on a background thread (dfdx devices are not
//! meant to be shared across threads) and become tensors on the training thread, where
//! the shape is also checked against what the model was compiled for.

use dfdx::shapes::Const;
use dfdx::tensor::{Tensor, TensorFromVec};

use super::error::DataError;

/// A batch of images on a device: `(batch, C, H, W)`.
pub type ImageTensor<const C: usize, const H: usize, const W: usize, D> =
    Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D>;

/// One-hot labels on a device: `(batch, K)`.
pub type OneHotTensor<const K: usize, D> = Tensor<(usize, Const<K>), f32, D>;

/// `len` examples of `channels x height x width` normalised pixels, with labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub(crate) pixels: Vec<f32>,
    pub(crate) labels: Vec<u8>,
    pub(crate) indices: Vec<u32>,
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
}

impl Batch {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `(channels, height, width)` of one example.
    pub fn image_dims(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Normalised pixels, `len x C x H x W`, row-major.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Position of each example in its split, e.g. to show misclassified images.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The images as a `(batch, C, H, W)` tensor on `dev`; an error if the batch's images
    /// are not `C x H x W`.
    pub fn images<D, const C: usize, const H: usize, const W: usize>(
        &self,
        dev: &D,
    ) -> Result<ImageTensor<C, H, W, D>, DataError>
    where
        D: TensorFromVec<f32>,
    {
        if self.image_dims() != (C, H, W) {
            return Err(DataError::Shape {
                found: self.image_dims(),
                expected: (C, H, W),
            });
        }
        let shape = (self.len(), Const::<C>, Const::<H>, Const::<W>);
        dev.try_tensor_from_vec(self.pixels.clone(), shape)
            .map_err(|e| DataError::Device(e.to_string()))
    }

    /// The labels as one-hot rows of `K` classes; an error if a label is `>= K`.
    pub fn one_hot<D, const K: usize>(&self, dev: &D) -> Result<OneHotTensor<K, D>, DataError>
    where
        D: TensorFromVec<f32>,
    {
        let mut data = vec![0.0f32; self.len() * K];
        for (row, &label) in data.chunks_exact_mut(K).zip(&self.labels) {
            let slot = row
                .get_mut(usize::from(label))
                .ok_or(DataError::OneHot { label, classes: K })?;
            *slot = 1.0;
        }
        dev.try_tensor_from_vec(data, (self.len(), Const::<K>))
            .map_err(|e| DataError::Device(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::tensor::Cpu;

    fn batch() -> Batch {
        Batch {
            pixels: (0..8).map(|v| v as f32).collect(),
            labels: vec![2, 0],
            indices: vec![5, 9],
            channels: 1,
            height: 2,
            width: 2,
        }
    }

    #[test]
    fn images_keep_layout_on_device() {
        let dev = Cpu::default();
        let t = batch().images::<_, 1, 2, 2>(&dev).expect("shape matches");
        assert_eq!(t.as_vec(), (0..8).map(|v| v as f32).collect::<Vec<_>>());
    }

    #[test]
    fn images_with_wrong_shape_are_an_error() {
        let dev = Cpu::default();
        let err = batch().images::<_, 1, 28, 28>(&dev).unwrap_err();
        assert!(err.to_string().contains("(1, 2, 2)"), "{err}");
    }

    #[test]
    fn one_hot_sets_the_label_column() {
        let dev = Cpu::default();
        let t = batch().one_hot::<_, 3>(&dev).expect("labels < 3");
        assert_eq!(t.as_vec(), [0., 0., 1., 1., 0., 0.]);
        assert!(batch().one_hot::<_, 2>(&dev).is_err());
    }
}
