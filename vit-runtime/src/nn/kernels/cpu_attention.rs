//! The attention core on the CPU, one image per rayon task.
//!
//! Per image and head (`P = softmax(q kᵀ · scale)`, `Pd = P ⊙ mask`, `O = Pd v`):
//! forward keeps `P`; backward regenerates the dropout mask from its seed and computes
//! `dPd = dO vᵀ`, `dv = Pdᵀ dO`, `dS = P ⊙ (dP - rowsum(dP ⊙ P))` with `dP = dPd ⊙ mask`,
//! `dq = scale · dS k`, `dk = scale · dSᵀ q`. The six products per head are small (`S`
//! and `DH` are 50 and 16 in `vit`) `gemm` calls on the calling thread, straight on the
//! strided q, k, v of the buffer; the tasks are the images.
use super::base::{read, AttentionMaps, Mode, QkvLayout};
use super::cpu_gemm::{product, Matrix, Write};
use super::cpu_math::{self, keep_mask};
use dfdx::prelude::*;
use rayon::prelude::*;

/// Runs the attention core on a `qkv` buffer laid out as `layout` says, returning the
/// merged heads `(B, S, DIM)` and, if asked, the weights before dropout.
pub(super) fn attention_op<
    QS: Shape,
    B: Dim,
    const S: usize,
    const H: usize,
    const DIM: usize,
    T: Tape<f32, Cpu>,
>(
    qkv: Tensor<QS, f32, Cpu, T>,
    layout: QkvLayout,
    batch: B,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, Cpu, T>,
    Option<AttentionMaps<B, H, S, Cpu>>,
) {
    assert_eq!(layout.len(), qkv.shape().num_elements(), "qkv layout");
    assert_eq!(DIM, layout.heads * layout.head_dim, "DIM = H * DH");
    let (qkv, mut tape) = qkv.split_tape();
    let dev = qkv.device().clone();
    let input = read(&qkv);
    let keep = if mode == Mode::Train && attention_dropout > 0.0 {
        Some((1.0 - attention_dropout, dev.random_u64()))
    } else {
        None
    };
    // The weights are kept for the backward pass and for the maps; inference needs neither.
    let keep_weights = T::OWNS_TAPE || want_maps;
    let (output, weights) = forward(&input, layout, keep, keep_weights);
    let out = dev.tensor_from_vec(output, (batch, Const::<S>, Const::<DIM>));
    let maps = want_maps
        .then(|| dev.tensor_from_vec(weights.clone(), (batch, Const::<H>, Const::<S>, Const::<S>)));
    if T::OWNS_TAPE {
        let (qkv_ghost, out_ghost) = (qkv.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            let gqkv = grads.get_or_alloc_mut(&qkv_ghost)?;
            backward(&input, &weights, &gy, layout, keep, gqkv);
            **grads.get_or_alloc_mut(&out_ghost)? = gy;
            Ok(())
        });
    }
    (out.put_tape(tape), maps)
}

/// Where q, k or v (`which` = 0, 1, 2) of image `b`, head `h` starts in the buffer:
/// an `S x DH` matrix from there, rows `token_stride` apart.
fn head_matrix(qkv: &[f32], l: QkvLayout, which: usize, b: usize, h: usize) -> Matrix<'_> {
    let base = which * l.which_stride + b * l.batch_stride + h * l.head_stride;
    Matrix::rows(&qkv[base..], l.token_stride)
}

/// The dropout mask of image `b`, head `h` (`0` or `1 / keep`, `S x S`), if dropout is on.
fn fill_mask(mask: &mut [f32], keep: Option<(f32, u64)>, l: &QkvLayout, b: usize, h: usize) {
    if let Some((keep, seed)) = keep {
        keep_mask(seed, (b * l.heads + h) as u64, keep, mask);
    }
}

/// `(output (B, S, DIM), weights (B, H, S, S))`; without `keep_weights` the weights are
/// not kept (an empty vector): each image's live in its task's buffer.
fn forward(
    qkv: &[f32],
    l: QkvLayout,
    keep: Option<(f32, u64)>,
    keep_weights: bool,
) -> (Vec<f32>, Vec<f32>) {
    let (s, dim) = (l.tokens, l.heads * l.head_dim);
    let image_weights = l.heads * s * s;
    let mut output = vec![0.0; l.batch * s * dim];
    // Per task: the weights after dropout (`S x S`) and the mask.
    let buffers = || (vec![0.0f32; s * s], vec![0.0f32; s * s]);
    if keep_weights {
        let mut weights = vec![0.0; l.batch * image_weights];
        output
            .par_chunks_mut(s * dim)
            .zip(weights.par_chunks_mut(image_weights))
            .enumerate()
            .for_each_init(buffers, |(dropped, mask), (b, (out, weights))| {
                attend(qkv, l, keep, b, out, weights, dropped, mask)
            });
        (output, weights)
    } else {
        output.par_chunks_mut(s * dim).enumerate().for_each_init(
            || (vec![0.0f32; image_weights], buffers()),
            |(weights, (dropped, mask)), (b, out)| {
                attend(qkv, l, keep, b, out, weights, dropped, mask)
            },
        );
        (output, Vec::new())
    }
}

/// Image `b`'s attention: its weights (`H x S x S`, before dropout) into `weights`, the
/// merged heads into `out` (`S x DIM`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attend(
    qkv: &[f32],
    l: QkvLayout,
    keep: Option<(f32, u64)>,
    b: usize,
    out: &mut [f32],
    weights: &mut [f32],
    dropped: &mut [f32],
    mask: &mut [f32],
) {
    let (s, dh) = (l.tokens, l.head_dim);
    let dim = l.heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    for (h, p) in weights.chunks_mut(s * s).enumerate() {
        let (q, k) = (head_matrix(qkv, l, 0, b, h), head_matrix(qkv, l, 1, b, h));
        let kt = Matrix::transposed(k.data, k.row_stride);
        product(p, s, (s, s, dh), q, kt, Write::Overwrite(scale), false);
        p.chunks_mut(s).for_each(softmax_in_place);
        let p: &[f32] = if keep.is_some() {
            fill_mask(mask, keep, &l, b, h);
            dropped
                .iter_mut()
                .zip(p.iter().zip(mask.iter()))
                .for_each(|(d, (p, m))| *d = p * m);
            dropped
        } else {
            p
        };
        let v = head_matrix(qkv, l, 2, b, h);
        product(
            &mut out[h * dh..],
            dim,
            (s, dh, s),
            Matrix::rows(p, s),
            v,
            Write::Overwrite(1.0),
            false,
        );
    }
}

/// In three vectorised passes: the maximum, the exponentials, their sum.
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = cpu_math::max(row);
    for x in row.iter_mut() {
        *x = cpu_math::exp(*x - max);
    }
    let inv = 1.0 / cpu_math::sum(row);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// Adds the gradient of the attention core to `gqkv` (same layout as the input).
fn backward(
    qkv: &[f32],
    weights: &[f32],
    gy: &[f32],
    l: QkvLayout,
    keep: Option<(f32, u64)>,
    gqkv: &mut [f32],
) {
    let (s, dh, heads) = (l.tokens, l.head_dim, l.heads);
    let dim = heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    // Per image: dq, dk, dv of every head, `[head][which][token][feature]`; scattered after.
    let per_image: Vec<Vec<f32>> = (0..l.batch)
        .into_par_iter()
        .map_init(
            // dP then dS (`S x S`), the weights after dropout, the mask.
            || {
                (
                    vec![0.0f32; s * s],
                    vec![0.0f32; s * s],
                    vec![0.0f32; s * s],
                )
            },
            |(ds, dropped, mask), b| {
                let mut grads = vec![0.0f32; heads * 3 * s * dh];
                for h in 0..heads {
                    let [q, k, v] = [0, 1, 2].map(|which| head_matrix(qkv, l, which, b, h));
                    let p = &weights[(b * heads + h) * s * s..(b * heads + h + 1) * s * s];
                    let go = Matrix::rows(&gy[b * s * dim + h * dh..], dim);
                    let (gq, rest) =
                        grads[h * 3 * s * dh..(h + 1) * 3 * s * dh].split_at_mut(s * dh);
                    let (gk, gv) = rest.split_at_mut(s * dh);
                    // dPd = dO vᵀ; with dropout dP = dPd ⊙ mask and Pd = P ⊙ mask.
                    let vt = Matrix::transposed(v.data, v.row_stride);
                    product(ds, s, (s, s, dh), go, vt, Write::Overwrite(1.0), false);
                    let pd: &[f32] = if keep.is_some() {
                        fill_mask(mask, keep, &l, b, h);
                        for ((d, pd), (&p, &m)) in ds
                            .iter_mut()
                            .zip(dropped.iter_mut())
                            .zip(p.iter().zip(mask.iter()))
                        {
                            *d *= m;
                            *pd = p * m;
                        }
                        dropped
                    } else {
                        p
                    };
                    // dv = Pdᵀ dO.
                    let pdt = Matrix::transposed(pd, s);
                    product(gv, dh, (s, dh, s), pdt, go, Write::Overwrite(1.0), false);
                    // Softmax backward, scaled for the scores: dS = P (dP - rowsum(dP P)) / sqrt(DH).
                    for (dsi, pi) in ds.chunks_mut(s).zip(p.chunks(s)) {
                        let dot = cpu_math::dot(dsi, pi);
                        for (d, &pij) in dsi.iter_mut().zip(pi) {
                            *d = pij * (*d - dot) * scale;
                        }
                    }
                    // dq = dS k; dk = dSᵀ q.
                    let dsm = Matrix::rows(ds, s);
                    product(gq, dh, (s, dh, s), dsm, k, Write::Overwrite(1.0), false);
                    let dst = Matrix::transposed(ds, s);
                    product(gk, dh, (s, dh, s), dst, q, Write::Overwrite(1.0), false);
                }
                grads
            },
        )
        .collect();
    for (b, grads) in per_image.iter().enumerate() {
        for h in 0..heads {
            for which in 0..3 {
                let base = which * l.which_stride + b * l.batch_stride + h * l.head_stride;
                let src = &grads[((h * 3 + which) * s) * dh..((h * 3 + which + 1) * s) * dh];
                for t in 0..s {
                    let dst = &mut gqkv[base + t * l.token_stride..][..dh];
                    for (g, &x) in dst.iter_mut().zip(&src[t * dh..(t + 1) * dh]) {
                        *g += x;
                    }
                }
            }
        }
    }
}
