//! One image file to the bytes a model takes: decoded (PNG or JPEG, recognised by their
//! content, so a misnamed file still reads), converted to grey or RGB, checked against or
//! resized to the model's size, and laid out channel after channel.
//!
//! Grey is `image`'s `to_luma8` (Rec. 709 weights; PIL's `convert("L")` uses Rec. 601,
//! so grey pixels can differ by a level or two from torchvision's). RGB drops an alpha
//! channel without compositing, as PIL's `convert("RGB")` does. 16-bit and palette PNGs
//! are converted to 8-bit grey or RGB like any other.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{ImageBuffer, ImageReader, Pixel};

use crate::data::error::DataError;
use crate::data::shape::ImageShape;

/// Reads the image at `path` as a model of input `shape` takes it: `channels x height x
/// width` bytes, channel after channel (1 channel: grey, 3: RGB). An image of another size
/// is resized (bilinear) if `resize`, else an error naming both sizes.
pub fn read_image(path: &Path, shape: ImageShape, resize: bool) -> Result<Vec<u8>, DataError> {
    check_shape(shape)?;
    let mut out = vec![0; shape.elements()];
    decode_into(path, shape, resize, &mut out)?;
    Ok(out)
}

/// Whether images can be decoded to `shape`: 1 or 3 channels, a size `image` can resize
/// to.
pub(super) fn check_shape(shape: ImageShape) -> Result<(), DataError> {
    if shape.channels != 1 && shape.channels != 3 {
        return Err(DataError::InvalidShape {
            shape,
            reason: "images are read as 1 (grey) or 3 (RGB) channels",
        });
    }
    if shape.height == 0 || shape.width == 0 {
        return Err(DataError::InvalidShape {
            shape,
            reason: "every dimension must be at least 1",
        });
    }
    target_size(shape).map(|_| ())
}

/// `(width, height)` as `image` counts them.
fn target_size(shape: ImageShape) -> Result<(u32, u32), DataError> {
    match (u32::try_from(shape.width), u32::try_from(shape.height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(DataError::InvalidShape {
            shape,
            reason: "images are at most 4294967295 pixels wide and high",
        }),
    }
}

/// Decodes `path` into `out` (`shape.elements()` bytes, from a checked `shape`); returns
/// whether the image was resized.
pub(super) fn decode_into(
    path: &Path,
    shape: ImageShape,
    resize: bool,
    out: &mut [u8],
) -> Result<bool, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = fs::read(path).map_err(io_err)?;
    let decode_err = |error| DataError::Decode {
        path: path.to_path_buf(),
        error,
    };
    // Borrowed, so the header can be read twice without copying the file.
    let reader = || ImageReader::new(Cursor::new(&bytes[..])).with_guessed_format();
    // The size first, from the header alone: a wrong-size image is refused without
    // decoding it (nor allocating what its header claims).
    let found = reader()
        .map_err(io_err)?
        .into_dimensions()
        .map_err(decode_err)?;
    let target = target_size(shape)?;
    let resized = found != target;
    if resized && !resize {
        return Err(DataError::ImageSize {
            path: path.to_path_buf(),
            found,
            expected: target,
        });
    }
    let image = reader().map_err(io_err)?.decode().map_err(decode_err)?;
    let size = resized.then_some(target);
    match shape.channels {
        1 => write_planar(image.to_luma8(), size, 1, out),
        3 => write_planar(image.to_rgb8(), size, 3, out),
        _ => {
            return Err(DataError::InvalidShape {
                shape,
                reason: "images are read as 1 (grey) or 3 (RGB) channels",
            })
        }
    }
    Ok(resized)
}

/// Writes an interleaved (`H x W x C`) 8-bit image, resized to `size` first if given, as
/// `C x H x W` bytes into `out`.
fn write_planar<P>(
    image: ImageBuffer<P, Vec<u8>>,
    size: Option<(u32, u32)>,
    channels: usize,
    out: &mut [u8],
) where
    P: Pixel<Subpixel = u8> + 'static,
{
    let image = match size {
        Some((w, h)) => imageops::resize(&image, w, h, FilterType::Triangle),
        None => image,
    };
    let interleaved = image.as_raw();
    let plane = out.len() / channels;
    if plane == 0 {
        return;
    }
    for (c, out_plane) in out.chunks_exact_mut(plane).take(channels).enumerate() {
        for (o, px) in out_plane.iter_mut().zip(interleaved.chunks_exact(channels)) {
            *o = px[c];
        }
    }
}
