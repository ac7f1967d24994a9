//! The attention core on the CPU, one image per rayon task.
//!
//! Per image and head (`P = softmax(q kᵀ · scale)`, `Pd = P ⊙ mask`, `O = Pd v`):
//! forward keeps `P`; backward regenerates the dropout mask from its seed and computes
//! `dPd = dO vᵀ`, `dv = Pdᵀ dO`, `dS = P ⊙ (dP - rowsum(dP ⊙ P))` with `dP = dPd ⊙ mask`,
//! `dq = scale · dS k`, `dk = scale · dSᵀ q`. All loops run along the last, contiguous
//! index of their output so they vectorise; `S` and `DH` are small (50 and 16 in `vit`).
use super::cpu::{keep_mask, read};
use super::QkvLayout;
use crate::nn::attention::AttentionMaps;
use crate::nn::Mode;
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
    let (output, weights) = forward(&input, layout, keep);
    let out = dev.tensor_from_vec(output, (batch, Const::<S>, Const::<DIM>));
    let maps = want_maps
        .then(|| dev.tensor_from_vec(weights.clone(), (batch, Const::<H>, Const::<S>, Const::<S>)));
    if T::OWNS_TAPE {
        let (qkv_ghost, out_ghost) = (qkv.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gy = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
            let gqkv = grads.get_or_alloc_mut(&qkv_ghost)?;
            backward(&input, &weights, &gy, layout, keep, gqkv);
            Ok(())
        });
    }
    (out.put_tape(tape), maps)
}

/// Scratch of one image and head, reused across heads.
struct Head {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// `kᵀ` and `vᵀ` (`DH x S`), so that rows of scores vectorise along tokens.
    kt: Vec<f32>,
    vt: Vec<f32>,
    /// Dropout mask (`0` or `1 / keep`), `S x S`.
    mask: Vec<f32>,
}

impl Head {
    fn new(l: &QkvLayout) -> Self {
        let (s, dh) = (l.tokens, l.head_dim);
        Self {
            q: vec![0.0; s * dh],
            k: vec![0.0; s * dh],
            v: vec![0.0; s * dh],
            kt: vec![0.0; s * dh],
            vt: vec![0.0; s * dh],
            mask: vec![0.0; s * s],
        }
    }

    /// Copies q, k, v of image `b`, head `h` into `S x DH` row-major buffers.
    fn gather(&mut self, qkv: &[f32], l: &QkvLayout, b: usize, h: usize) {
        let dh = l.head_dim;
        for (which, dst) in [&mut self.q, &mut self.k, &mut self.v]
            .into_iter()
            .enumerate()
        {
            let base = which * l.which_stride + b * l.batch_stride + h * l.head_stride;
            for s in 0..l.tokens {
                let src = base + s * l.token_stride;
                dst[s * dh..(s + 1) * dh].copy_from_slice(&qkv[src..src + dh]);
            }
        }
        let tokens = l.tokens;
        for s in 0..tokens {
            for d in 0..dh {
                self.kt[d * tokens + s] = self.k[s * dh + d];
                self.vt[d * tokens + s] = self.v[s * dh + d];
            }
        }
    }

    /// `row = scale · Σ_d a[d] · mᵀ[d]`: one row of `a mᵀ` from the transposed `mᵀ`.
    fn row_times_transposed(a: &[f32], mt: &[f32], scale: f32, row: &mut [f32]) {
        let s = row.len();
        row.fill(0.0);
        for (d, &ad) in a.iter().enumerate() {
            let ad = ad * scale;
            for (r, &m) in row.iter_mut().zip(&mt[d * s..(d + 1) * s]) {
                *r += ad * m;
            }
        }
    }

    fn fill_mask(&mut self, keep: Option<(f32, u64)>, l: &QkvLayout, b: usize, h: usize) {
        if let Some((keep, seed)) = keep {
            keep_mask(seed, (b * l.heads + h) as u64, keep, &mut self.mask);
        }
    }
}

/// `(output (B, S, DIM), weights (B, H, S, S))`.
fn forward(qkv: &[f32], l: QkvLayout, keep: Option<(f32, u64)>) -> (Vec<f32>, Vec<f32>) {
    let (s, dh, heads) = (l.tokens, l.head_dim, l.heads);
    let dim = heads * dh;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut output = vec![0.0; l.batch * s * dim];
    let mut weights = vec![0.0; l.batch * heads * s * s];
    output
        .par_chunks_mut(s * dim)
        .zip(weights.par_chunks_mut(heads * s * s))
        .enumerate()
        .for_each_init(
            || Head::new(&l),
            |head, (b, (out, weights))| {
                for (h, p) in weights.chunks_mut(s * s).enumerate() {
                    head.gather(qkv, &l, b, h);
                    head.fill_mask(keep, &l, b, h);
                    for i in 0..s {
                        let row = &mut p[i * s..(i + 1) * s];
                        Head::row_times_transposed(
                            &head.q[i * dh..(i + 1) * dh],
                            &head.kt,
                            scale,
                            row,
                        );
                        softmax_in_place(row);
                        let o = &mut out[i * dim + h * dh..i * dim + (h + 1) * dh];
                        let mask = &head.mask[i * s..(i + 1) * s];
                        for (j, &pij) in row.iter().enumerate() {
                            let a = if keep.is_some() { pij * mask[j] } else { pij };
                            for (o, &v) in o.iter_mut().zip(&head.v[j * dh..(j + 1) * dh]) {
                                *o += a * v;
                            }
                        }
                    }
                }
            },
        );
    (output, weights)
}

fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
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
            || (Head::new(&l), vec![0.0f32; s * s], vec![0.0f32; s * dh]),
            |(head, ds, go), b| {
                let mut grads = vec![0.0f32; heads * 3 * s * dh];
                for h in 0..heads {
                    head.gather(qkv, &l, b, h);
                    head.fill_mask(keep, &l, b, h);
                    let p = &weights[(b * heads + h) * s * s..(b * heads + h + 1) * s * s];
                    for i in 0..s {
                        go[i * dh..(i + 1) * dh]
                            .copy_from_slice(&gy[(b * s + i) * dim + h * dh..][..dh]);
                    }
                    let (gq, rest) =
                        grads[h * 3 * s * dh..(h + 1) * 3 * s * dh].split_at_mut(s * dh);
                    let (gk, gv) = rest.split_at_mut(s * dh);
                    for i in 0..s {
                        let goi = &go[i * dh..(i + 1) * dh];
                        let pi = &p[i * s..(i + 1) * s];
                        let dsi = &mut ds[i * s..(i + 1) * s];
                        // dPd[i][j] = dO[i] · v[j]; dv[j] += Pd[i][j] dO[i].
                        for j in 0..s {
                            let m = if keep.is_some() {
                                head.mask[i * s + j]
                            } else {
                                1.0
                            };
                            let vj = &head.v[j * dh..(j + 1) * dh];
                            let dpd: f32 = goi.iter().zip(vj).map(|(a, b)| a * b).sum();
                            let pd = pi[j] * m;
                            for (g, &o) in gv[j * dh..(j + 1) * dh].iter_mut().zip(goi) {
                                *g += pd * o;
                            }
                            dsi[j] = dpd * m;
                        }
                        // Softmax backward: dS = P (dP - rowsum(dP P)).
                        let dot: f32 = dsi.iter().zip(pi).map(|(a, b)| a * b).sum();
                        for (d, &pij) in dsi.iter_mut().zip(pi) {
                            *d = pij * (*d - dot) * scale;
                        }
                        // dq[i] += dS[i][j] k[j]; dk[j] += dS[i][j] q[i].
                        let qi = &head.q[i * dh..(i + 1) * dh];
                        let gqi = &mut gq[i * dh..(i + 1) * dh];
                        for (j, &d) in dsi.iter().enumerate() {
                            let kj = &head.k[j * dh..(j + 1) * dh];
                            for (g, &k) in gqi.iter_mut().zip(kj) {
                                *g += d * k;
                            }
                            for (g, &q) in gk[j * dh..(j + 1) * dh].iter_mut().zip(qi) {
                                *g += d * q;
                            }
                        }
                    }
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
