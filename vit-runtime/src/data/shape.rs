//! The size of one image, as a model is compiled to take it.
//!
//! The loaders are told this shape rather than reading it from the data: an image folder
//! has no size of its own (its images are checked against, or resized to, the model's),
//! and MNIST's fixed 1 x 28 x 28 is checked against it so that a mismatch fails at load
//! time, not deep inside a forward pass.

use std::fmt;

/// `channels x height x width` of one image; its pixels are stored channel after channel
/// (like a CHW tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// MNIST and Fashion-MNIST: grey 28 x 28.
    pub const MNIST: ImageShape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };

    /// Values in one image (`C * H * W`), saturating: an absurd shape must not wrap into
    /// a small one.
    pub const fn elements(self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// Values in one channel of one image (`H * W`).
    pub const fn plane(self) -> usize {
        self.height.saturating_mul(self.width)
    }
}

/// `CxHxW`, e.g. `3x32x32`.
impl fmt::Display for ImageShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}
