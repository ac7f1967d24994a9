//! Pixel math of one example: random crop with zero padding, horizontal flip, normalisation.
//!
//! Order and semantics follow torchvision's `RandomCrop(size, padding)` ->
//! `RandomHorizontalFlip()` -> `ToTensor()` -> `Normalize(mean, std)`: padding happens on
//! raw pixels, so a padded pixel is a raw 0 and becomes `(0 - mean) / std` after
//! normalisation, exactly like a black pixel of the image.

use rand::Rng;

use crate::recipe::{Augment, Normalize};

/// Where one example is cropped and whether it is flipped: the random draws, kept apart
/// from the pixel math so that the math can be tested on hand-made cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform {
    pub crop: Option<Crop>,
    pub flip: bool,
}

impl Transform {
    /// The identity: what evaluation batches get.
    pub const NONE: Transform = Transform {
        crop: None,
        flip: false,
    };
}

/// A `size` x `size` window of the image zero-padded by `padding` on every side; `top` and
/// `left` are in padded coordinates (`0..=rows + 2 * padding - size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub size: usize,
    pub padding: usize,
    pub top: usize,
    pub left: usize,
}

/// Output height and width of a `rows` x `cols` image under `augment`, or why the crop
/// cannot be taken.
pub fn output_dims(augment: &Augment, rows: usize, cols: usize) -> Result<(usize, usize), String> {
    match augment.random_crop {
        None => Ok((rows, cols)),
        Some((size, padding)) => {
            let (padded_rows, padded_cols) = (rows + 2 * padding, cols + 2 * padding);
            if size == 0 || size > padded_rows || size > padded_cols {
                Err(format!(
                    "random crop of {size} x {size} does not fit a {rows} x {cols} image \
                     padded by {padding}"
                ))
            } else {
                Ok((size, size))
            }
        }
    }
}

/// Draws one example's transform: crop offset uniform over every valid position, flip
/// with probability 1/2. `augment` must have passed [`output_dims`].
pub fn draw<R: Rng>(rng: &mut R, augment: &Augment, rows: usize, cols: usize) -> Transform {
    let crop = augment.random_crop.map(|(size, padding)| Crop {
        size,
        padding,
        top: rng.gen_range(0..=(rows + 2 * padding).saturating_sub(size)),
        left: rng.gen_range(0..=(cols + 2 * padding).saturating_sub(size)),
    });
    let flip = augment.horizontal_flip && rng.gen_bool(0.5);
    Transform { crop, flip }
}

/// `x -> (x / 255 - mean) / std` for every byte value, precomputed: a table lookup per
/// pixel instead of a division.
#[derive(Debug, Clone)]
pub struct Normalizer {
    table: [f32; 256],
}

impl Normalizer {
    pub fn new(normalize: Normalize) -> Self {
        let mut table = [0.0; 256];
        for (v, slot) in table.iter_mut().enumerate() {
            *slot = (v as f32 / 255.0 - normalize.mean) / normalize.std;
        }
        Normalizer { table }
    }

    pub fn apply(&self, pixel: u8) -> f32 {
        self.table[usize::from(pixel)]
    }
}

/// Writes the transformed, normalised example into `out` (`out_rows * out_cols` floats,
/// row-major, from [`output_dims`]).
pub fn write_example(
    src: &[u8],
    rows: usize,
    cols: usize,
    transform: &Transform,
    norm: &Normalizer,
    out: &mut [f32],
) {
    let (out_rows, out_cols) = match transform.crop {
        Some(c) => (c.size, c.size),
        None => (rows, cols),
    };
    // Offset of output (0, 0) in source coordinates; may be negative inside the padding.
    let (dy, dx) = match transform.crop {
        Some(c) => (
            c.top as isize - c.padding as isize,
            c.left as isize - c.padding as isize,
        ),
        None => (0, 0),
    };
    let zero = norm.apply(0);
    for (i, out_row) in out.chunks_exact_mut(out_cols).take(out_rows).enumerate() {
        let y = i as isize + dy;
        let src_row = usize::try_from(y)
            .ok()
            .filter(|&y| y < rows)
            .and_then(|y| src.get(y * cols..(y + 1) * cols));
        for (j, px) in out_row.iter_mut().enumerate() {
            let j = if transform.flip { out_cols - 1 - j } else { j };
            let x = j as isize + dx;
            *px = match (src_row, usize::try_from(x)) {
                (Some(row), Ok(x)) => row.get(x).map_or(zero, |&v| norm.apply(v)),
                _ => zero,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 x 3 image with pixels 1..=9, identity normalisation scaled back to raw values.
    const IMG: [u8; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    fn raw() -> Normalizer {
        // x / 255 / (1 / 255) = x: outputs are the raw pixel values.
        Normalizer::new(Normalize {
            mean: 0.0,
            std: 1.0 / 255.0,
        })
    }

    fn run(t: Transform) -> Vec<f32> {
        let n = t.crop.map_or(9, |c| c.size * c.size);
        let mut out = vec![-1.0; n];
        write_example(&IMG, 3, 3, &t, &raw(), &mut out);
        out.iter().map(|v| v.round()).collect()
    }

    fn crop(top: usize, left: usize) -> Option<Crop> {
        Some(Crop {
            size: 3,
            padding: 1,
            top,
            left,
        })
    }

    #[test]
    fn identity_copies_pixels() {
        assert_eq!(run(Transform::NONE), [1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    }

    #[test]
    fn flip_mirrors_each_row() {
        let t = Transform {
            crop: None,
            flip: true,
        };
        assert_eq!(run(t), [3., 2., 1., 6., 5., 4., 9., 8., 7.]);
    }

    #[test]
    fn centre_crop_of_padded_image_is_identity() {
        let t = Transform {
            crop: crop(1, 1),
            flip: false,
        };
        assert_eq!(run(t), [1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    }

    #[test]
    fn top_left_crop_shifts_image_down_right_with_zero_border() {
        let t = Transform {
            crop: crop(0, 0),
            flip: false,
        };
        assert_eq!(run(t), [0., 0., 0., 0., 1., 2., 0., 4., 5.]);
    }

    #[test]
    fn bottom_right_crop_shifts_image_up_left() {
        let t = Transform {
            crop: crop(2, 2),
            flip: false,
        };
        assert_eq!(run(t), [5., 6., 0., 8., 9., 0., 0., 0., 0.]);
    }

    #[test]
    fn flip_applies_after_crop() {
        // Crop at (0, 0) then mirror: the zero column ends on the right.
        let t = Transform {
            crop: crop(0, 0),
            flip: true,
        };
        assert_eq!(run(t), [0., 0., 0., 2., 1., 0., 5., 4., 0.]);
    }

    #[test]
    fn smaller_crop_takes_a_window() {
        let t = Transform {
            crop: Some(Crop {
                size: 2,
                padding: 0,
                top: 1,
                left: 0,
            }),
            flip: false,
        };
        assert_eq!(run(t), [4., 5., 7., 8.]);
    }

    #[test]
    fn padding_normalises_like_a_black_pixel() {
        let norm = Normalizer::new(Normalize {
            mean: 0.5,
            std: 0.5,
        });
        assert_eq!(norm.apply(0), -1.0);
        assert_eq!(norm.apply(255), 1.0);
        let mut out = [0.0; 9];
        let t = Transform {
            crop: crop(0, 0),
            flip: false,
        };
        write_example(&IMG, 3, 3, &t, &norm, &mut out);
        assert_eq!(out[0], -1.0);
    }

    #[test]
    fn crop_larger_than_padded_image_is_rejected() {
        let aug = Augment {
            random_crop: Some((33, 2)),
            horizontal_flip: false,
        };
        assert!(output_dims(&aug, 28, 28).is_err());
        let aug = Augment {
            random_crop: Some((32, 2)),
            horizontal_flip: false,
        };
        assert_eq!(output_dims(&aug, 28, 28), Ok((32, 32)));
    }

    #[test]
    fn drawn_offsets_cover_every_position_and_flip_both_ways() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let aug = Augment {
            random_crop: Some((28, 2)),
            horizontal_flip: true,
        };
        let mut seen = [[false; 5]; 5];
        let mut flips = 0;
        for _ in 0..2000 {
            let t = draw(&mut rng, &aug, 28, 28);
            let c = t.crop.expect("crop requested");
            seen[c.top][c.left] = true;
            flips += usize::from(t.flip);
        }
        assert!(seen.iter().flatten().all(|&s| s), "offsets 0..=4 all drawn");
        assert!(
            (800..1200).contains(&flips),
            "flip p = 0.5, got {flips}/2000"
        );
    }
}
