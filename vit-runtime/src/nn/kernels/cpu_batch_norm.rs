//! Batch norm on the CPU: the per-channel sums in one pass over the maps, parallel over
//! channels; the output in one pass, parallel over images. The backward pass is the same
//! two passes. dfdx's composite version makes about a dozen passes each way, and its
//! broadcasts walk indices one element at a time: a CNN with batch norms trained at a
//! quarter of the speed of the same CNN without.
use super::base::{read, BatchStatistics, Channels, Images};
use super::cpu_math::{add_to, CHUNK};
use dfdx::prelude::*;
use rayon::prelude::*;

/// The values of channel `c` in `(B, C, HW)` maps: one slice of `hw` per image.
fn channel(data: &[f32], c: usize, channels: usize, hw: usize) -> impl Iterator<Item = &[f32]> {
    data.chunks(channels * hw)
        .map(move |image| &image[c * hw..(c + 1) * hw])
}

/// Per channel, the mean and the biased variance (two passes, as exact as the data allow).
fn moments(x: &[f32], channels: usize, hw: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (x.len() / channels) as f64;
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = channel(x, c, channels, hw)
                .map(|s| s.iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / n;
            let squares: f64 = channel(x, c, channels, hw)
                .map(|s| s.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>())
                .sum();
            (mean as f32, (squares / n) as f32)
        })
        .unzip()
}

/// See [`super::Kernels::batch_norm`].
pub fn batch_norm<B: Dim, const C: usize, const H: usize, const W: usize, T: Tape<f32, Cpu>>(
    x: Images<B, C, H, W, Cpu, T>,
    weight: &Channels<C, Cpu>,
    bias: &Channels<C, Cpu>,
    running: Option<(&Channels<C, Cpu>, &Channels<C, Cpu>)>,
    eps: f32,
) -> (Images<B, C, H, W, Cpu, T>, Option<BatchStatistics>) {
    let hw = H * W;
    let (x, tape) = x.split_tape();
    let (weight, weight_tape) = weight.retaped::<T>().split_tape();
    let (bias, bias_tape) = bias.retaped::<T>().split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);
    let input = read(&x);
    let (w, b) = (read(&weight), read(&bias));
    let count = input.len() / C;
    let (mean, var, stats) = match running {
        Some((mean, var)) => (read(mean), read(var), None),
        None => {
            let (mean, var) = moments(&input, C, hw);
            let stats = BatchStatistics {
                mean: mean.clone(),
                var: var.clone(),
                count,
            };
            (mean, var, Some(stats))
        }
    };
    let batch_statistics = stats.is_some();
    let rstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let scale: Vec<f32> = (0..C).map(|c| w[c] * rstd[c]).collect();
    let shift: Vec<f32> = (0..C).map(|c| b[c] - mean[c] * scale[c]).collect();
    let mut output = vec![0.0; input.len()];
    let maps_per_task = (CHUNK / hw.max(1)).max(1);
    output
        .par_chunks_mut(hw)
        .zip(input.par_chunks(hw))
        .enumerate()
        .with_min_len(maps_per_task)
        .for_each(|(map, (y, x))| {
            let (s, t) = (scale[map % C], shift[map % C]);
            for (y, x) in y.iter_mut().zip(x) {
                *y = x * s + t;
            }
        });
    let out = x.device().tensor_from_vec(output, *x.shape());
    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, out_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            // Per channel: sum(gy) (the bias's gradient) and sum(gy * xhat) (the weight's).
            let (gb, gw): (Vec<f32>, Vec<f32>) = (0..C)
                .into_par_iter()
                .map(|c| {
                    let (m, r) = (mean[c], rstd[c]);
                    let mut sums = (0.0f64, 0.0f64);
                    for (gy, x) in channel(&gy[..], c, C, hw).zip(channel(&input, c, C, hw)) {
                        for (&g, &v) in gy.iter().zip(x) {
                            sums.0 += g as f64;
                            sums.1 += (g * (v - m) * r) as f64;
                        }
                    }
                    (sums.0 as f32, sums.1 as f32)
                })
                .unzip();
            let gx = grads.get_or_alloc_mut(&x_ghost)?;
            let n = count as f32;
            gx.par_chunks_mut(hw)
                .zip(gy.par_chunks(hw))
                .zip(input.par_chunks(hw))
                .enumerate()
                .with_min_len(maps_per_task)
                .for_each(|(map, ((gx, gy), x))| {
                    let c = map % C;
                    if batch_statistics {
                        // The batch's mean and variance depend on x too.
                        let (m, r) = (mean[c], rstd[c]);
                        let (mean_g, mean_gx) = (gb[c] / n, gw[c] / n);
                        for ((gx, &g), &v) in gx.iter_mut().zip(gy).zip(x) {
                            *gx += scale[c] * (g - mean_g - (v - m) * r * mean_gx);
                        }
                    } else {
                        for (gx, &g) in gx.iter_mut().zip(gy) {
                            *gx += scale[c] * g;
                        }
                    }
                });
            add_to(grads.get_or_alloc_mut(&w_ghost)?, &gw);
            add_to(grads.get_or_alloc_mut(&b_ghost)?, &gb);
            **grads.get_or_alloc_mut(&out_ghost)? = gy;
            Ok(())
        });
    }
    (out.put_tape(tape), stats)
}
