//! Pixel math of one example: random crop with zero padding, horizontal flip, normalisation.
//!
//! Order and semantics follow torchvision's `RandomCrop(size, padding)` ->
//! `RandomHorizontalFlip()` -> `ToTensor()` -> `Normalize(mean, std)`: padding happens on
//! raw pixels, so a padded pixel is a raw 0 and becomes `(0 - mean) / std` after
//! normalisation, exactly like a black pixel of the image.

use rand::Rng;

use super::error::DataError;
use super::shape::ImageShape;
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

/// `x -> (x / 255 - mean[c]) / std[c]` for every byte value of every channel, precomputed:
/// a table lookup per pixel instead of a division.
#[derive(Debug, Clone)]
pub struct Normalizer {
    /// One table per channel.
    tables: Vec<[f32; 256]>,
}

impl Normalizer {
    /// Tables for images of `channels` channels. An error if a list of `normalize` has
    /// neither one value (for every channel) nor one per channel, or if a mean is not
    /// finite or a std is zero or not finite: either would turn every pixel into NaN or
    /// infinity, which training would only notice epochs later.
    pub fn new(normalize: Normalize, channels: usize) -> Result<Self, DataError> {
        if channels == 0 {
            return Err(DataError::Config(
                "images must have at least one channel".into(),
            ));
        }
        for (what, values) in [("mean", normalize.mean), ("std", normalize.std)] {
            if values.len() != 1 && values.len() != channels {
                return Err(DataError::Config(format!(
                    "normalisation {what} has {} values ({values:?}), but the images have \
                     {channels} channel(s): give one value for all channels or one per channel",
                    values.len()
                )));
            }
        }
        let mut tables = Vec::with_capacity(channels);
        for c in 0..channels {
            let (mean, std) = normalize.channel(c);
            if !mean.is_finite() {
                return Err(DataError::Config(format!(
                    "normalisation mean of channel {c} must be finite, got {mean}"
                )));
            }
            if !(std.is_finite() && std != 0.0) {
                return Err(DataError::Config(format!(
                    "normalisation std of channel {c} must be finite and non-zero, got {std}"
                )));
            }
            let mut table = [0.0; 256];
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (v as f32 / 255.0 - mean) / std;
            }
            tables.push(table);
        }
        Ok(Normalizer { tables })
    }

    pub fn channels(&self) -> usize {
        self.tables.len()
    }

    /// `pixel` of `channel` normalised; NaN for a channel the normaliser was not built for.
    pub fn apply(&self, channel: usize, pixel: u8) -> f32 {
        self.tables
            .get(channel)
            .map_or(f32::NAN, |t| t[usize::from(pixel)])
    }

    /// A whole image (`channels x h x w` bytes, channel after channel) normalised, as a
    /// model takes it: for images that do not go through a [`Loader`](super::Loader),
    /// e.g. one read for a prediction.
    pub fn apply_image(&self, image: &[u8]) -> Vec<f32> {
        let plane = image.len() / self.channels();
        if plane == 0 {
            return Vec::new();
        }
        image
            .chunks_exact(plane)
            .zip(&self.tables)
            .flat_map(|(px, table)| px.iter().map(|&v| table[usize::from(v)]))
            .collect()
    }
}

/// Writes the transformed, normalised example into `out`: every channel of `src` (an
/// image of `shape`) gets the same crop and flip, so the channels stay aligned. `out`
/// holds `channels * out_rows * out_cols` floats, channel after channel, from
/// [`output_dims`]; `norm` must be built for `shape.channels` channels.
pub fn write_example(
    src: &[u8],
    shape: ImageShape,
    transform: &Transform,
    norm: &Normalizer,
    out: &mut [f32],
) {
    let (rows, cols) = (shape.height, shape.width);
    let out_plane = match transform.crop {
        Some(c) => c.size * c.size,
        None => rows * cols,
    };
    if out_plane == 0 || shape.plane() == 0 {
        return; // nothing to write (and `chunks_exact` takes no zero size)
    }
    debug_assert_eq!(norm.channels(), shape.channels);
    let planes = src
        .chunks_exact(shape.plane())
        .zip(out.chunks_exact_mut(out_plane));
    for ((src, out), table) in planes.zip(&norm.tables) {
        write_plane(src, rows, cols, transform, table, out);
    }
}

/// One channel of [`write_example`]: `table` normalises it.
fn write_plane(
    src: &[u8],
    rows: usize,
    cols: usize,
    transform: &Transform,
    table: &[f32; 256],
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
    let zero = table[0];
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
                (Some(row), Ok(x)) => row.get(x).map_or(zero, |&v| table[usize::from(v)]),
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

    const GREY_3X3: ImageShape = ImageShape {
        channels: 1,
        height: 3,
        width: 3,
    };

    /// x / 255 / (1 / 255) = x: outputs are the raw pixel values.
    const RAW: Normalize = Normalize {
        mean: &[0.0],
        std: &[1.0 / 255.0],
    };

    fn raw(channels: usize) -> Normalizer {
        Normalizer::new(RAW, channels).expect("valid")
    }

    fn run(t: Transform) -> Vec<f32> {
        let n = t.crop.map_or(9, |c| c.size * c.size);
        let mut out = vec![-1.0; n];
        write_example(&IMG, GREY_3X3, &t, &raw(1), &mut out);
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
        let norm = Normalizer::new(
            Normalize {
                mean: &[0.5],
                std: &[0.5],
            },
            1,
        )
        .expect("valid");
        assert_eq!(norm.apply(0, 0), -1.0);
        assert_eq!(norm.apply(0, 255), 1.0);
        let mut out = [0.0; 9];
        let t = Transform {
            crop: crop(0, 0),
            flip: false,
        };
        write_example(&IMG, GREY_3X3, &t, &norm, &mut out);
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

    /// `IMG` in channel 0, `IMG + 10` in channel 1, `IMG + 20` in channel 2.
    fn rgb() -> Vec<u8> {
        (0..3u8).flat_map(|c| IMG.map(|v| v + 10 * c)).collect()
    }

    const RGB_3X3: ImageShape = ImageShape {
        channels: 3,
        height: 3,
        width: 3,
    };

    #[test]
    fn crop_and_flip_move_every_channel_alike() {
        let t = Transform {
            crop: crop(0, 0),
            flip: true,
        };
        let grey = run(t);
        let mut out = vec![-1.0; 27];
        write_example(&rgb(), RGB_3X3, &t, &raw(3), &mut out);
        for (c, plane) in out.chunks_exact(9).enumerate() {
            // Padding stays 0; image pixels carry their channel's offset.
            let expected: Vec<f32> = grey
                .iter()
                .map(|&v| if v == 0.0 { 0.0 } else { v + 10.0 * c as f32 })
                .collect();
            let plane: Vec<f32> = plane.iter().map(|v| v.round()).collect();
            assert_eq!(plane, expected, "channel {c}");
        }
    }

    #[test]
    fn each_channel_is_normalised_by_its_own_mean_and_std() {
        let norm = Normalizer::new(
            Normalize {
                mean: &[0.0, 0.5, 1.0],
                std: &[1.0, 0.5, 0.25],
            },
            3,
        )
        .expect("one value per channel");
        assert_eq!(
            [norm.apply(0, 255), norm.apply(1, 255), norm.apply(2, 255)],
            [1.0, 1.0, 0.0]
        );
        assert_eq!(
            [norm.apply(0, 0), norm.apply(1, 0), norm.apply(2, 0)],
            [0.0, -1.0, -4.0]
        );
        let mut out = vec![0.0; 27];
        let t = Transform {
            crop: crop(0, 0),
            flip: false,
        };
        write_example(&rgb(), RGB_3X3, &t, &norm, &mut out);
        // The padded corner of each channel is a black pixel of that channel.
        assert_eq!([out[0], out[9], out[18]], [0.0, -1.0, -4.0]);
        // Pixel (1, 1) of the output is source (0, 0): 1, 11 and 21.
        for (c, raw) in [1u8, 11, 21].into_iter().enumerate() {
            assert_eq!(out[9 * c + 4], norm.apply(c, raw), "channel {c}");
        }
        assert_eq!(norm.apply_image(&rgb())[9], norm.apply(1, 11));
    }

    #[test]
    fn normalisation_lists_must_fit_the_channels_and_be_usable() {
        let two = Normalize {
            mean: &[0.5, 0.5],
            std: &[0.5],
        };
        assert!(Normalizer::new(two, 3).is_err());
        assert!(Normalizer::new(two, 2).is_ok());
        let zero_std = Normalize {
            mean: &[0.5],
            std: &[0.5, 0.0, 0.5],
        };
        let err = Normalizer::new(zero_std, 3).unwrap_err().to_string();
        assert!(err.contains("channel 1"), "{err}");
        let nan = Normalize {
            mean: &[f32::NAN],
            std: &[1.0],
        };
        assert!(Normalizer::new(nan, 1).is_err());
        let inf = Normalize {
            mean: &[0.0],
            std: &[f32::INFINITY],
        };
        assert!(Normalizer::new(inf, 1).is_err());
    }
}
