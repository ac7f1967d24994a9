//! timm's adaptations of pretrained weights to a model of other sizes, the ones
//! `timm.create_model(name, pretrained=True, img_size=.., in_chans=.., num_classes=..)` makes:
//! position embeddings resampled to the new patch grid (`resample_abs_pos_embed`), patch
//! kernels resampled to the new patch size (`resample_patch_embed`) and adapted to the new
//! channel count (`adapt_input_conv`). A head for another class count is not adapted but
//! left as the model initialised it (the caller decides that).
//!
//! Every resampling is PyTorch's `F.interpolate(mode="bicubic", antialias=True,
//! align_corners=False)`, which timm uses for both; being separable, it is one weight matrix
//! per axis.
use nalgebra::DMatrix;

/// The weights of PyTorch's antialiased bicubic resize of one axis from `input` to `output`
/// samples: an `(output, input)` matrix, row-major.
///
/// PyTorch's `_upsample_bicubic2d_aa` (as PIL): the Keys cubic with `a = -0.5`, stretched by
/// the scale when shrinking, its taps cut at the borders and each row normalised to sum 1.
pub fn bicubic_weights(input: usize, output: usize) -> Vec<f64> {
    fn cubic(x: f64) -> f64 {
        const A: f64 = -0.5;
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
        } else {
            0.0
        }
    }
    let scale = input as f64 / output as f64;
    let (support, stretch) = if scale >= 1.0 {
        (2.0 * scale, scale)
    } else {
        (2.0, 1.0)
    };
    let mut weights = vec![0.0; output * input];
    for i in 0..output {
        let center = scale * (i as f64 + 0.5);
        // PyTorch truncates towards zero, then clamps at 0: the same as flooring here.
        let first = ((center - support + 0.5).floor().max(0.0)) as usize;
        let end = ((center + support + 0.5).floor() as usize).min(input);
        let row = &mut weights[i * input..(i + 1) * input];
        for (j, w) in row.iter_mut().enumerate().take(end).skip(first) {
            *w = cubic((j as f64 - center + 0.5) / stretch);
        }
        let total: f64 = row.iter().sum();
        if total != 0.0 {
            row.iter_mut().for_each(|w| *w /= total);
        }
    }
    weights
}

/// timm's `resample_abs_pos_embed`: `(1, prefix + old.0 * old.1, dim)` positions resampled
/// to a `new.0 x new.1` grid; the `prefix` tokens' positions (class, distillation) are kept.
pub fn resample_positions(
    positions: &[f32],
    prefix: usize,
    dim: usize,
    old: (usize, usize),
    new: (usize, usize),
) -> Vec<f32> {
    let (rows, cols) = (bicubic_weights(old.0, new.0), bicubic_weights(old.1, new.1));
    let grid = &positions[prefix * dim..];
    let mut out = positions[..prefix * dim].to_vec();
    for i in 0..new.0 {
        for j in 0..new.1 {
            let mut acc = vec![0.0f64; dim];
            for k in 0..old.0 {
                for l in 0..old.1 {
                    let w = rows[i * old.0 + k] * cols[j * old.1 + l];
                    if w != 0.0 {
                        let cell = &grid[(k * old.1 + l) * dim..][..dim];
                        acc.iter_mut()
                            .zip(cell)
                            .for_each(|(a, &v)| *a += w * v as f64);
                    }
                }
            }
            out.extend(acc.into_iter().map(|a| a as f32));
        }
    }
    out
}

/// timm's `resample_patch_embed`: `(kernels, old.0, old.1)` patch kernels (output x input
/// channels of them) resampled to `new.0 x new.1` so that, on a correspondingly resized
/// image, a patch gives about the same embedding: each kernel times the pseudo-inverse of the
/// image resize. The resize is separable, so its pseudo-inverse is the Kronecker product of
/// the two axes' pseudo-inverses, and a kernel `K` becomes `Ph^T K Pw`.
pub fn resample_patch_kernels(
    kernels: &[f32],
    old: (usize, usize),
    new: (usize, usize),
) -> Vec<f32> {
    let pinv = |input: usize, output: usize| {
        let resize = DMatrix::from_row_slice(output, input, &bicubic_weights(input, output));
        resize
            .pseudo_inverse(f64::EPSILON * input.max(output) as f64)
            .expect("a non-negative eps") // (input, output)
    };
    let (ph, pw) = (pinv(old.0, new.0), pinv(old.1, new.1));
    let mut out = Vec::with_capacity(kernels.len() / (old.0 * old.1) * new.0 * new.1);
    for kernel in kernels.chunks_exact(old.0 * old.1) {
        let k = DMatrix::from_row_slice(
            old.0,
            old.1,
            &kernel.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        );
        let resampled = ph.transpose() * k * &pw; // (new.0, new.1)
        for i in 0..new.0 {
            out.extend((0..new.1).map(|j| resampled[(i, j)] as f32));
        }
    }
    out
}

/// timm's `adapt_input_conv`: `(out, old_channels, area)` kernels for `new_channels` input
/// channels: summed over the channels for one, and for more, a 3-channel kernel repeated
/// channel by channel and scaled by `3 / new_channels` (so a grey image repeated over the
/// channels gives the embedding it gave before). `Err` names what timm does not adapt either.
pub fn adapt_input_channels(
    kernels: &[f32],
    out: usize,
    old_channels: usize,
    new_channels: usize,
) -> Result<Vec<f32>, String> {
    let area = kernels.len() / (out * old_channels);
    if new_channels == 1 {
        return Ok(kernels
            .chunks_exact(old_channels * area)
            .flat_map(|per_out| {
                (0..area).map(move |p| (0..old_channels).map(|c| per_out[c * area + p]).sum())
            })
            .collect());
    }
    if old_channels != 3 {
        return Err(format!(
            "kernels for {old_channels} channels adapt only to 1 channel (as in timm), not to {new_channels}"
        ));
    }
    let scale = 3.0 / new_channels as f32;
    Ok(kernels
        .chunks_exact(old_channels * area)
        .flat_map(|per_out| {
            (0..new_channels).flat_map(move |c| {
                let source = &per_out[(c % 3) * area..][..area];
                source.iter().map(move |&v| v * scale)
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_rows_sum_to_one_and_the_identity_resize_is_the_identity() {
        for (input, output) in [(8, 4), (4, 6), (14, 4), (3, 17)] {
            let w = bicubic_weights(input, output);
            for row in w.chunks_exact(input) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        let same = bicubic_weights(5, 5);
        for i in 0..5 {
            for j in 0..5 {
                assert_eq!(same[i * 5 + j], f64::from(u8::from(i == j)));
            }
        }
    }

    #[test]
    fn a_kernel_resampled_then_the_image_resized_gives_the_same_response() {
        // Upsampling 3 -> 5: the resize R has full column rank, so for a patch x of the
        // old size, <resampled kernel, R x> = <kernel, x> (the point of resample_patch_embed).
        let (old, new) = ((3, 3), (5, 5));
        let kernel: Vec<f32> = (0..9).map(|i| (i as f32 * 0.37).sin()).collect();
        let resampled = resample_patch_kernels(&kernel, old, new);
        let (r, c) = (bicubic_weights(3, 5), bicubic_weights(3, 5));
        let x: Vec<f64> = (0..9).map(|i| (i as f64 * 1.3).cos()).collect();
        let mut resized = [0.0f64; 25];
        for i in 0..5 {
            for j in 0..5 {
                for k in 0..3 {
                    for l in 0..3 {
                        resized[i * 5 + j] += r[i * 3 + k] * c[j * 3 + l] * x[k * 3 + l];
                    }
                }
            }
        }
        let before: f64 = kernel.iter().zip(&x).map(|(&k, x)| k as f64 * x).sum();
        let after: f64 = resampled
            .iter()
            .zip(&resized)
            .map(|(&k, x)| k as f64 * x)
            .sum();
        assert!((before - after).abs() < 1e-5, "{before} vs {after}");
    }

    #[test]
    fn channels_are_summed_for_one_and_repeated_and_scaled_for_more() {
        // 1 output, 3 channels of a 2-pixel kernel.
        let k = [1.0, 2.0, 10.0, 20.0, 100.0, 200.0];
        assert_eq!(
            adapt_input_channels(&k, 1, 3, 1).unwrap(),
            vec![111.0, 222.0]
        );
        let four = adapt_input_channels(&k, 1, 3, 4).unwrap();
        let s = 0.75;
        assert_eq!(
            four,
            vec![
                s,
                2.0 * s,
                10.0 * s,
                20.0 * s,
                100.0 * s,
                200.0 * s,
                s,
                2.0 * s
            ]
        );
        assert!(adapt_input_channels(&[1.0, 2.0], 1, 2, 3)
            .unwrap_err()
            .contains("2 channels"));
    }
}
