//! im2col and max pooling on the CPU as direct loops, one image per rayon task.
//!
//! Built from dfdx ops (see `composite`), both cut `K*K` strided slices out of a padded copy
//! and stack them: about twenty passes over the feature maps and as many allocations.
use super::cpu::read;
use super::{Maps, Window};
use dfdx::prelude::*;
use rayon::prelude::*;

/// The input pixel a window element reads, or `None` in the zero border.
#[inline]
fn source(out: usize, kernel_offset: usize, w: &Window, size: usize) -> Option<usize> {
    (out * w.stride + kernel_offset)
        .checked_sub(w.padding)
        .filter(|&i| i < size)
}

/// Calls `f(column, pixel)` for every window element of one image that reads a pixel (the
/// zero border is skipped): `column` indexes the image's `(ho * wo, k * k * c)` im2col rows,
/// `pixel` its `(c, h, w)` maps. The one loop nest behind `unfold` and its backward pass.
#[inline]
fn for_each_tap(w: &Window, (c, h, wd): (usize, usize, usize), mut f: impl FnMut(usize, usize)) {
    let (ho, wo) = w.out;
    let row = w.k * w.k * c;
    for oy in 0..ho {
        for ox in 0..wo {
            for ky in 0..w.k {
                let Some(iy) = source(oy, ky, w, h) else {
                    continue;
                };
                for kx in 0..w.k {
                    let Some(ix) = source(ox, kx, w, wd) else {
                        continue;
                    };
                    let column = (oy * wo + ox) * row + (ky * w.k + kx) * c;
                    for ch in 0..c {
                        f(column + ch, (ch * h + iy) * wd + ix);
                    }
                }
            }
        }
    }
}

pub(super) fn unfold<T: Tape<f32, Cpu>>(
    x: Maps<Cpu, T>,
    w: Window,
) -> Tensor<(usize, usize), f32, Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (b, c, h, wd) = *x.shape();
    let (ho, wo) = w.out;
    let row = w.k * w.k * c;
    let input = read(&x);
    let mut columns = vec![0.0f32; b * ho * wo * row];
    columns
        .par_chunks_mut(ho * wo * row)
        .zip(input.par_chunks(c * h * wd))
        .for_each(|(cols, image)| {
            for_each_tap(&w, (c, h, wd), |column, pixel| cols[column] = image[pixel])
        });
    let out = x.device().tensor_from_vec(columns, (b * ho * wo, row));
    if T::OWNS_TAPE {
        let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gcols = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
            let gx = grads.get_or_alloc_mut(&x_ghost)?;
            gx.par_chunks_mut(c * h * wd)
                .zip(gcols.par_chunks(ho * wo * row))
                .for_each(|(gimage, cols)| {
                    for_each_tap(&w, (c, h, wd), |column, pixel| {
                        gimage[pixel] += cols[column]
                    })
                });
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// Max pooling; the gradient goes to the first maximum of each window, as in PyTorch.
pub(super) fn max_pool<T: Tape<f32, Cpu>>(x: Maps<Cpu, T>, w: Window) -> Maps<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (b, c, h, wd) = *x.shape();
    let (ho, wo) = w.out;
    let input = read(&x);
    let mut output = vec![0.0f32; b * c * ho * wo];
    // Index (within its input map) of the element each output took.
    let mut argmax = vec![0u32; output.len()];
    output
        .par_chunks_mut(ho * wo)
        .zip(argmax.par_chunks_mut(ho * wo))
        .zip(input.par_chunks(h * wd))
        .for_each(|((out, arg), map)| {
            for oy in 0..ho {
                for ox in 0..wo {
                    let (mut best, mut at) = (f32::NEG_INFINITY, 0);
                    for ky in 0..w.k {
                        for kx in 0..w.k {
                            let i = (oy * w.stride + ky) * wd + ox * w.stride + kx;
                            if map[i] > best || (map[i].is_nan() && !best.is_nan()) {
                                (best, at) = (map[i], i);
                            }
                        }
                    }
                    out[oy * wo + ox] = best;
                    arg[oy * wo + ox] = at as u32;
                }
            }
        });
    let out = x.device().tensor_from_vec(output, (b, c, ho, wo));
    if T::OWNS_TAPE {
        let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gy = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
            let gx = grads.get_or_alloc_mut(&x_ghost)?;
            gx.par_chunks_mut(h * wd)
                .zip(gy.par_chunks(ho * wo).zip(argmax.par_chunks(ho * wo)))
                .for_each(|(gmap, (gy, arg))| {
                    for (g, &i) in gy.iter().zip(arg) {
                        gmap[i as usize] += g;
                    }
                });
            Ok(())
        });
    }
    out.put_tape(tape)
}
