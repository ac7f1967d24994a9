//! Convolution and max pooling on the CPU as direct loops, one image per rayon task.
//!
//! A convolution is im2col + one product per image, in PyTorch's own layout: the columns of
//! an image are `(C * K * K, HO * WO)` (row `(c, ky, kx)`, one column per output pixel), so
//! the `(O, C, K, K)` weight multiplies them as it is stored and the product comes out
//! channels first. Each row of the columns is a shifted copy of input rows, so building
//! them is memcpy work. The columns live in a per-thread buffer and are rebuilt in the
//! backward pass instead of being kept for it (they are `K * K` times the input). A ReLU
//! after the convolution is applied while the image's output is still in cache, keeping
//! one flag per element for the backward pass (a separate ReLU op copies the maps twice).
//!
//! Built from dfdx ops (see `composite`), both cut `K*K` strided slices out of a padded copy
//! and stack them: about twenty passes over the feature maps and as many allocations.
//! Backward runs the images in fixed groups, one rayon task each.
use super::base::read;
use super::base::{Epilogue, Maps, Window};
use super::cpu_gemm::{product, Matrix, Write};
use super::cpu_math::{self, add_to};
use dfdx::prelude::*;
use rayon::prelude::*;

/// Images per rayon task in the backward pass: a fixed grouping, so that the weight
/// gradient sums the same way for any number of threads.
const IMAGES_PER_TASK: usize = 4;

/// The geometry of one image's im2col: input `(c, h, w)` under `window`.
#[derive(Clone, Copy)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    window: Window,
}

impl Geometry {
    fn pixels(&self) -> usize {
        self.window.out.0 * self.window.out.1
    }

    fn rows(&self) -> usize {
        self.c * self.window.k * self.window.k
    }

    /// The output columns `ox` whose tap `kx` reads an input column (not the zero
    /// border), and the input column the first of them reads.
    fn valid_columns(&self, kx: usize) -> (std::ops::Range<usize>, usize) {
        let Window {
            stride, padding, ..
        } = self.window;
        let wo = self.window.out.1;
        // ox * stride + kx - padding in [0, w)
        let first = padding.saturating_sub(kx).div_ceil(stride);
        let end = ((self.w + padding).saturating_sub(kx))
            .div_ceil(stride)
            .min(wo);
        let first = first.min(end);
        (first..end, (first * stride + kx).saturating_sub(padding))
    }

    /// Calls `f(row, column, pixel, len)` for every run of the columns that reads
    /// input pixels: `len` elements from `column` of im2col row `row` (row-major
    /// `(rows, pixels)`) read `len` input pixels from `pixel` on, `stride` apart. The
    /// zero border is skipped; it is the same for every image.
    fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize, usize)) {
        let Window {
            k, stride, padding, ..
        } = self.window;
        let (ho, wo) = self.window.out;
        for ch in 0..self.c {
            for ky in 0..k {
                for kx in 0..k {
                    let row = (ch * k + ky) * k + kx;
                    let (columns, ix) = self.valid_columns(kx);
                    if columns.is_empty() {
                        continue;
                    }
                    for oy in 0..ho {
                        let Some(iy) = (oy * stride + ky).checked_sub(padding) else {
                            continue;
                        };
                        if iy >= self.h {
                            continue;
                        }
                        f(
                            row * ho * wo + oy * wo + columns.start,
                            (ch * self.h + iy) * self.w + ix,
                            columns.len(),
                            stride,
                        );
                    }
                }
            }
        }
    }

    /// One image's columns into `cols`, whose zero border must already be zero.
    fn im2col(&self, image: &[f32], cols: &mut [f32]) {
        self.for_each_run(|column, pixel, len, stride| {
            let dst = &mut cols[column..column + len];
            if stride == 1 {
                dst.copy_from_slice(&image[pixel..pixel + len]);
            } else {
                for (d, s) in dst.iter_mut().zip(image[pixel..].iter().step_by(stride)) {
                    *d = *s;
                }
            }
        });
    }

    /// The transpose of [`Self::im2col`]: adds the columns' gradient to the image's.
    fn col2im_add(&self, cols: &[f32], image: &mut [f32]) {
        self.for_each_run(|column, pixel, len, stride| {
            let src = &cols[column..column + len];
            if stride == 1 {
                add_to(&mut image[pixel..pixel + len], src);
            } else {
                for (d, s) in image[pixel..].iter_mut().step_by(stride).zip(src) {
                    *d += s;
                }
            }
        });
    }
}

/// See [`super::Kernels::conv2d`].
pub(super) fn conv2d<O: Dim, T: Tape<f32, Cpu>>(
    x: Maps<Cpu, T>,
    weight: Tensor<(O, usize), f32, Cpu, T>,
    bias: &Tensor<(O,), f32, Cpu>,
    window: Window,
    epilogue: Epilogue,
) -> Tensor<(usize, O, usize), f32, Cpu, T> {
    let (x, tape) = x.split_tape();
    let (weight, weight_tape) = weight.split_tape();
    let (bias, bias_tape) = bias.retaped::<T>().split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);
    let (batch, c, h, w) = *x.shape();
    let geometry = Geometry { c, h, w, window };
    let (rows, pixels) = (geometry.rows(), geometry.pixels());
    let outputs = weight.shape().0.size();
    assert_eq!(weight.shape().1, rows, "weight is (O, C * K * K)");
    let (input, wt, b) = (read(&x), read(&weight), read(&bias));
    let image_len = c * h * w;

    // One image: im2col into the task's buffer, then `y = bias + W cols`.
    let convolve = |cols: &mut Vec<f32>, y: &mut [f32], image: &[f32]| {
        geometry.im2col(image, cols);
        for (row, &bias) in y.chunks_mut(pixels).zip(&b) {
            row.fill(bias);
        }
        product(
            y,
            pixels,
            (outputs, pixels, rows),
            Matrix::rows(&wt, rows),
            Matrix::rows(cols, pixels),
            Write::Accumulate(1.0),
            false,
        );
    };
    let scratch = || vec![0.0f32; rows * pixels];
    let out_len = outputs * pixels;
    let mut output = vec![0.0f32; batch * out_len];
    let images = output
        .par_chunks_mut(out_len)
        .zip(input.par_chunks(image_len));
    // Under a ReLU, where the output is positive: where the gradient passes.
    let mut positive = Vec::new();
    match epilogue {
        Epilogue::Identity => {
            images.for_each_init(scratch, |cols, (y, image)| convolve(cols, y, image))
        }
        Epilogue::Relu => {
            positive = vec![false; batch * out_len];
            images.zip(positive.par_chunks_mut(out_len)).for_each_init(
                scratch,
                |cols, ((y, image), positive)| {
                    convolve(cols, y, image);
                    relu_in_place(y, positive);
                },
            )
        }
    }
    let out = x
        .device()
        .tensor_from_vec(output, (batch, weight.shape().0, pixels));

    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, out_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let mut gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            // Per group of `IMAGES_PER_TASK` images: their weight and bias gradients,
            // added up in group order after, so the sums do not depend on the number of
            // threads. Each task has two column buffers of its own.
            let scratch = || (vec![0.0f32; rows * pixels], vec![0.0f32; rows * pixels]);
            let partial: Vec<(Vec<f32>, Vec<f32>)> = grads
                .get_or_alloc_mut(&x_ghost)?
                .par_chunks_mut(IMAGES_PER_TASK * image_len)
                .zip(gy.par_chunks_mut(IMAGES_PER_TASK * out_len))
                .zip(input.par_chunks(IMAGES_PER_TASK * image_len))
                .enumerate()
                .map_init(scratch, |(cols, gcols), (group, ((gx, gy), images))| {
                    let (mut gw, mut gb) = (vec![0.0f32; outputs * rows], vec![0.0f32; outputs]);
                    let group_images = gx
                        .chunks_mut(image_len)
                        .zip(gy.chunks_mut(out_len))
                        .zip(images.chunks(image_len));
                    for (j, ((gx, gy), image)) in group_images.enumerate() {
                        // Masked in place: after this op nothing reads the output's gradient.
                        if epilogue == Epilogue::Relu {
                            let i = group * IMAGES_PER_TASK + j;
                            let positive = &positive[i * out_len..][..out_len];
                            for (g, &pass) in gy.iter_mut().zip(positive) {
                                *g = if pass { *g } else { 0.0 };
                            }
                        }
                        let gy = &*gy;
                        geometry.im2col(image, cols);
                        // dW += gy · colsᵀ, db += row sums of gy.
                        product(
                            &mut gw,
                            rows,
                            (outputs, rows, pixels),
                            Matrix::rows(gy, pixels),
                            Matrix::transposed(cols, pixels),
                            Write::Accumulate(1.0),
                            false,
                        );
                        for (g, row) in gb.iter_mut().zip(gy.chunks(pixels)) {
                            *g += cpu_math::sum(row);
                        }
                        // d cols = Wᵀ · gy, folded back onto the image.
                        product(
                            gcols,
                            pixels,
                            (rows, pixels, outputs),
                            Matrix::transposed(&wt, rows),
                            Matrix::rows(gy, pixels),
                            Write::Overwrite(1.0),
                            false,
                        );
                        geometry.col2im_add(gcols, gx);
                    }
                    (gw, gb)
                })
                .collect();
            let gw = grads.get_or_alloc_mut(&w_ghost)?;
            partial.iter().for_each(|(part, _)| add_to(gw, part));
            let gb = grads.get_or_alloc_mut(&b_ghost)?;
            partial.iter().for_each(|(_, part)| add_to(gb, part));
            **grads.get_or_alloc_mut(&out_ghost)? = gy;
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// `y = max(y, 0)`, noting where `y > 0`.
fn relu_in_place(y: &mut [f32], positive: &mut [bool]) {
    for (y, positive) in y.iter_mut().zip(positive) {
        *positive = *y > 0.0;
        *y = if *positive { *y } else { 0.0 };
    }
}

/// One map's max pooling into `out` (rows of `wd` inputs), noting in `taps` which window
/// element (`ky * k + kx`) each output took: a CNN's 2x2 windows with their own loop,
/// others by index.
fn max_pool_map(map: &[f32], wd: usize, w: Window, out: &mut [f32], taps: &mut [u32]) {
    let wo = w.out.1;
    if w.k == 2 && w.stride == 2 {
        max_pool_2x2(map, wd, wo, out, taps)
    } else {
        max_pool_indexed(map, wd, wo, w, out, taps)
    }
}

/// Takes `v` where it is greater, or NaN (a window with a NaN gives NaN, as in PyTorch):
/// a select, so no branch to mispredict on random data.
#[inline(always)]
fn take_if_greater(best: &mut f32, at: &mut u32, v: f32, tap: u32) {
    let better = (v > *best) | v.is_nan();
    *best = if better { v } else { *best };
    *at = if better { tap } else { *at };
}

/// Each output from its four inputs in registers, a row of outputs as vector lanes (the
/// loads of pairs become shuffles).
#[inline(always)]
fn max_pool_2x2(map: &[f32], wd: usize, wo: usize, out: &mut [f32], taps: &mut [u32]) {
    let rows = out.chunks_exact_mut(wo).zip(taps.chunks_exact_mut(wo));
    for (oy, (out, taps)) in rows.enumerate() {
        let top = &map[2 * oy * wd..][..2 * wo];
        let bottom = &map[(2 * oy + 1) * wd..][..2 * wo];
        let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for ((out, at), (a, b)) in out.iter_mut().zip(taps.iter_mut()).zip(windows) {
            let (mut best, mut tap) = (a[0], 0);
            take_if_greater(&mut best, &mut tap, a[1], 1);
            take_if_greater(&mut best, &mut tap, b[0], 2);
            take_if_greater(&mut best, &mut tap, b[1], 3);
            *out = best;
            *at = tap;
        }
    }
}

#[inline(always)]
fn max_pool_indexed(
    map: &[f32],
    wd: usize,
    wo: usize,
    w: Window,
    out: &mut [f32],
    taps: &mut [u32],
) {
    let rows = out.chunks_exact_mut(wo).zip(taps.chunks_exact_mut(wo));
    for (oy, (out, taps)) in rows.enumerate() {
        out.fill(f32::NEG_INFINITY);
        taps.fill(0);
        for ky in 0..w.k {
            let row = &map[(oy * w.stride + ky) * wd..];
            for kx in 0..w.k {
                let tap = (ky * w.k + kx) as u32;
                for (ox, (best, at)) in out.iter_mut().zip(taps.iter_mut()).enumerate() {
                    take_if_greater(best, at, row[ox * w.stride + kx], tap);
                }
            }
        }
    }
}

/// Max pooling; the gradient goes to the first maximum of each window, and a NaN wins
/// over numbers, as in PyTorch.
pub(super) fn max_pool<T: Tape<f32, Cpu>>(x: Maps<Cpu, T>, w: Window) -> Maps<Cpu, T> {
    let (x, mut tape) = x.split_tape();
    let (b, c, h, wd) = *x.shape();
    let (ho, wo) = w.out;
    let input = read(&x);
    let mut output = vec![0.0f32; b * c * ho * wo];
    // The window element (`ky * k + kx`) each output took.
    let mut taps = vec![0u32; output.len()];
    output
        .par_chunks_mut(ho * wo)
        .zip(taps.par_chunks_mut(ho * wo))
        .zip(input.par_chunks(h * wd))
        .for_each(|((out, taps), map)| max_pool_map(map, wd, w, out, taps));
    let out = x.device().tensor_from_vec(output, (b, c, ho, wo));
    if T::OWNS_TAPE {
        let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
        // Where tap t of the window at (0, 0) lies in the map.
        let offsets: Vec<usize> = (0..w.k * w.k).map(|t| t / w.k * wd + t % w.k).collect();
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            let gx = grads.get_or_alloc_mut(&x_ghost)?;
            gx.par_chunks_mut(h * wd)
                .zip(gy.par_chunks(ho * wo).zip(taps.par_chunks(ho * wo)))
                .for_each(|(gmap, (gy, taps))| {
                    let rows = gy.chunks_exact(wo).zip(taps.chunks_exact(wo));
                    for (oy, (gy, taps)) in rows.enumerate() {
                        let corner = oy * w.stride * wd;
                        for (ox, (g, &t)) in gy.iter().zip(taps).enumerate() {
                            gmap[corner + ox * w.stride + offsets[t as usize]] += g;
                        }
                    }
                });
            **grads.get_or_alloc_mut(&out_ghost)? = gy;
            Ok(())
        });
    }
    out.put_tape(tape)
}
