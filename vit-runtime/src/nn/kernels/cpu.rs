//! CPU versions of the fused ops: one pass forward, one pass backward, parallel over rows.
//!
//! Each op copies its input out of dfdx (dfdx keeps tensor storage crate-private), computes
//! its output into a fresh `Vec` that becomes the output tensor, and, when a tape records,
//! adds a backward closure that owns what the gradient needs. A backward pass moves its
//! output's gradient out of `Gradients` while it borrows the inputs' ones (instead of
//! copying it) and puts it back when done. Inputs must be contiguous
//! (outputs of matmuls, additions or other ops, not permuted views); every caller in
//! `nn` passes such tensors.
use super::base::{
    read, AttentionMaps, BatchStatistics, Channels, Epilogue, Images, Maps, Mode, QkvLayout, Window,
};
use super::Kernels;
use super::{cpu_attention, cpu_batch_norm, cpu_conv, cpu_linear};
use dfdx::prelude::*;
use rayon::prelude::*;

use super::cpu_math::{add_to, dot, erf, exp, keep_mask, sum, sum_map, CHUNK};

const SQRT_1_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn gelu_value(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * SQRT_1_2))
}

/// `d/dx (x Phi(x)) = Phi(x) + x phi(x)`.
#[inline(always)]
fn gelu_slope(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * SQRT_1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x)
}

/// `gx += f(gy, saved)` element by element, in parallel chunks: the backward pass of an
/// elementwise op, given what its forward pass kept (input or output).
fn add_elementwise_gradient(
    gx: &mut [f32],
    gy: &[f32],
    saved: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync,
) {
    gx.par_chunks_mut(CHUNK)
        .zip(gy.par_chunks(CHUNK).zip(saved.par_chunks(CHUNK)))
        .for_each(|(gx, (gy, saved))| {
            for ((gx, &gy), &s) in gx.iter_mut().zip(gy).zip(saved) {
                *gx += f(gy, s);
            }
        });
}

impl Kernels for Cpu {
    /// 64 images of `vit` (5 MB of activations per block) give 1.2-1.4x the images/s of
    /// 1000 at once; LightViT runs 1000 at once (1.5 GFLOPs are 5,000 of its images).
    const EVAL_CHUNK_FLOPS: Option<u64> = Some(1_500_000_000);

    /// Chunks run side by side, one per thread: inside one chunk the kernels split rows
    /// across threads, but the ops between them (dfdx's copies, allocations, small matmuls)
    /// run on one core, so a single chunk leaves the others idle for much of its time.
    /// Each chunk computes what it would alone, so the results do not depend on the
    /// number of threads. (Not in a build with the `cuda` feature: see [`Shareable`](super::Shareable).)
    #[cfg(not(feature = "cuda"))]
    fn map_chunks<R: super::Shareable>(
        count: usize,
        f: impl Fn(usize) -> R + super::Shareable,
    ) -> Vec<R> {
        (0..count).into_par_iter().map(&f).collect()
    }

    fn conv2d<O: Dim, T: Tape<f32, Self>>(
        x: Maps<Self, T>,
        weight: Tensor<(O, usize), f32, Self, T>,
        bias: &Tensor<(O,), f32, Self>,
        window: Window,
        epilogue: Epilogue,
    ) -> Tensor<(usize, O, usize), f32, Self, T> {
        cpu_conv::conv2d(x, weight, bias, window, epilogue)
    }

    fn max_pool<T: Tape<f32, Self>>(x: Maps<Self, T>, window: Window) -> Maps<Self, T> {
        cpu_conv::max_pool(x, window)
    }

    fn linear<R: Dim, I: Dim, O: Dim, T: Tape<f32, Self>>(
        x: Tensor<(R, I), f32, Self, T>,
        weight: Tensor<(O, I), f32, Self, T>,
        bias: &Tensor<(O,), f32, Self>,
    ) -> Tensor<(R, O), f32, Self, T> {
        cpu_linear::linear(x, weight, bias)
    }

    fn relu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        let (x, mut tape) = x.split_tape();
        let mut output = read(&x);
        output
            .par_chunks_mut(CHUNK)
            .for_each(|y| y.iter_mut().for_each(|y| *y = y.max(0.0)));
        let out = x.device().tensor_from_vec(output, *x.shape());
        if T::OWNS_TAPE {
            // The output is positive exactly where the input is: keep it, not a copy.
            let (x_ghost, out_ghost, kept) = (x.ghost(), out.ghost(), out.clone());
            tape.add_backward_op(move |grads| {
                let y = read(&kept);
                let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
                let gx = grads.get_or_alloc_mut(&x_ghost)?;
                add_elementwise_gradient(gx, &gy, &y, |gy, y| if y > 0.0 { gy } else { 0.0 });
                **grads.get_or_alloc_mut(&out_ghost)? = gy;
                Ok(())
            });
        }
        out.put_tape(tape)
    }

    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        let (x, mut tape) = x.split_tape();
        let input = read(&x);
        let mut output = vec![0.0; input.len()];
        output
            .par_chunks_mut(CHUNK)
            .zip(input.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = gelu_value(x);
                }
            });
        let out = x.device().tensor_from_vec(output, *x.shape());
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            tape.add_backward_op(move |grads| {
                let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
                let gx = grads.get_or_alloc_mut(&x_ghost)?;
                add_elementwise_gradient(gx, &gy, &input, |gy, x| gy * gelu_slope(x));
                **grads.get_or_alloc_mut(&out_ghost)? = gy;
                Ok(())
            });
        }
        out.put_tape(tape)
    }

    fn layer_norm<B: Dim, S: Dim, const M: usize, T: Tape<f32, Self>>(
        x: Tensor<(B, S, Const<M>), f32, Self, T>,
        weight: &Tensor<Rank1<M>, f32, Self>,
        bias: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Tensor<(B, S, Const<M>), f32, Self, T> {
        let (x, tape) = x.split_tape();
        let (weight, weight_tape) = weight.retaped::<T>().split_tape();
        let (bias, bias_tape) = bias.retaped::<T>().split_tape();
        let mut tape = tape.merge(weight_tape).merge(bias_tape);
        let input = read(&x);
        let (w, b) = (read(&weight), read(&bias));
        let rows = input.len() / M;
        // Per row: mean and 1 / sqrt(var + eps), kept for the backward pass.
        let mut stats = vec![(0.0f32, 0.0f32); rows];
        let mut output = vec![0.0; input.len()];
        let rows_per_task = (CHUNK / M).max(1);
        output
            .par_chunks_mut(rows_per_task * M)
            .zip(input.par_chunks(rows_per_task * M))
            .zip(stats.par_chunks_mut(rows_per_task))
            .for_each(|((y, x), stats)| {
                for ((y, x), stat) in y.chunks_mut(M).zip(x.chunks(M)).zip(stats) {
                    let mean = sum(x) / M as f32;
                    let var = sum_map(x, |v| (v - mean) * (v - mean)) / M as f32;
                    let rstd = 1.0 / (var + eps).sqrt();
                    for i in 0..M {
                        y[i] = (x[i] - mean) * rstd * w[i] + b[i];
                    }
                    *stat = (mean, rstd);
                }
            });
        let out = x.device().tensor_from_vec(output, *x.shape());
        if T::OWNS_TAPE {
            let (x_ghost, w_ghost, b_ghost, out_ghost) =
                (x.ghost(), weight.ghost(), bias.ghost(), out.ghost());
            tape.add_backward_op(move |grads| {
                let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
                // Each task sums its rows' weight and bias gradients; the sums add up after.
                let gx = grads.get_or_alloc_mut(&x_ghost)?;
                let partial: Vec<(Vec<f32>, Vec<f32>)> = gx
                    .par_chunks_mut(rows_per_task * M)
                    .zip(gy.par_chunks(rows_per_task * M))
                    .zip(input.par_chunks(rows_per_task * M))
                    .zip(stats.par_chunks(rows_per_task))
                    .map(|(((gx, gy), x), stats)| {
                        let (mut gw, mut gb) = (vec![0.0f32; M], vec![0.0f32; M]);
                        let mut xhat = [0.0f32; M];
                        let mut g = [0.0f32; M];
                        for (((gx, gy), x), &(mean, rstd)) in gx
                            .chunks_mut(M)
                            .zip(gy.chunks(M))
                            .zip(x.chunks(M))
                            .zip(stats)
                        {
                            for i in 0..M {
                                xhat[i] = (x[i] - mean) * rstd;
                                g[i] = gy[i] * w[i];
                                gw[i] += gy[i] * xhat[i];
                                gb[i] += gy[i];
                            }
                            let mean_g = sum(&g) / M as f32;
                            let mean_gx = dot(&g, &xhat) / M as f32;
                            for i in 0..M {
                                gx[i] += rstd * (g[i] - mean_g - xhat[i] * mean_gx);
                            }
                        }
                        (gw, gb)
                    })
                    .collect();
                let gw = grads.get_or_alloc_mut(&w_ghost)?;
                for (part, _) in &partial {
                    add_to(gw, part);
                }
                let gb = grads.get_or_alloc_mut(&b_ghost)?;
                for (_, part) in &partial {
                    add_to(gb, part);
                }
                **grads.get_or_alloc_mut(&out_ghost)? = gy;
                Ok(())
            });
        }
        out.put_tape(tape)
    }

    fn batch_norm<B: Dim, const C: usize, const H: usize, const W: usize, T: Tape<f32, Self>>(
        x: Images<B, C, H, W, Self, T>,
        weight: &Channels<C, Self>,
        bias: &Channels<C, Self>,
        running: Option<(&Channels<C, Self>, &Channels<C, Self>)>,
        eps: f32,
    ) -> (Images<B, C, H, W, Self, T>, Option<BatchStatistics>) {
        cpu_batch_norm::batch_norm(x, weight, bias, running, eps)
    }

    fn dropout<S: Shape, T: Tape<f32, Self>>(
        x: Tensor<S, f32, Self, T>,
        p: f32,
    ) -> Tensor<S, f32, Self, T> {
        let (x, mut tape) = x.split_tape();
        let keep = 1.0 - p;
        let seed = x.device().random_u64();
        let mut output = read(&x);
        output
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(chunk, y)| {
                let mut mask = vec![0.0; y.len()];
                keep_mask(seed, chunk as u64, keep, &mut mask);
                for (y, m) in y.iter_mut().zip(&mask) {
                    *y *= m;
                }
            });
        let out = x.device().tensor_from_vec(output, *x.shape());
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            tape.add_backward_op(move |grads| {
                let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
                let gx = grads.get_or_alloc_mut(&x_ghost)?;
                gx.par_chunks_mut(CHUNK)
                    .zip(gy.par_chunks(CHUNK))
                    .enumerate()
                    .for_each(|(chunk, (gx, gy))| {
                        let mut mask = vec![0.0; gx.len()];
                        keep_mask(seed, chunk as u64, keep, &mut mask);
                        for ((gx, gy), m) in gx.iter_mut().zip(gy).zip(&mask) {
                            *gx += gy * m;
                        }
                    });
                **grads.get_or_alloc_mut(&out_ghost)? = gy;
                Ok(())
            });
        }
        out.put_tape(tape)
    }

    fn attention<
        B: Dim,
        const S: usize,
        const H: usize,
        const DH: usize,
        const DIM: usize,
        const QKV: usize,
        T: Tape<f32, Self>,
    >(
        qkv: Tensor<(B, Const<S>, Const<QKV>), f32, Self, T>,
        attention_dropout: f32,
        mode: Mode,
        want_maps: bool,
    ) -> (
        Tensor<(B, Const<S>, Const<DIM>), f32, Self, T>,
        Option<AttentionMaps<B, H, S, Self>>,
    ) {
        let batch = qkv.shape().0;
        let layout = QkvLayout::fused(batch.size(), H, S, DH);
        cpu_attention::attention_op(qkv, layout, batch, attention_dropout, mode, want_maps)
    }

    fn attention_per_head<
        B: Dim,
        const S: usize,
        const H: usize,
        const DH: usize,
        const DIM: usize,
        T: Tape<f32, Self>,
    >(
        qkv: Tensor<(Const<3>, Const<H>, usize, Const<DH>), f32, Self, T>,
        batch: B,
        attention_dropout: f32,
        mode: Mode,
        want_maps: bool,
    ) -> (
        Tensor<(B, Const<S>, Const<DIM>), f32, Self, T>,
        Option<AttentionMaps<B, H, S, Self>>,
    ) {
        let layout = QkvLayout::per_head(batch.size(), H, S, DH);
        cpu_attention::attention_op(qkv, layout, batch, attention_dropout, mode, want_maps)
    }
}
