//! Multi-head self-attention that also hands back its attention weights
//! (dfdx's `MultiHeadAttention` does not), in the two layouts the specs use.
use super::functional::{dropout, linear};
use super::kernels::Mode;
use super::kernels::{AttentionMaps, Kernels};
use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

/// What an attention layer's forward pass needs besides its tensors.
#[derive(Debug, Clone, Copy)]
pub struct AttentionOptions {
    pub mode: Mode,
    pub attention_dropout: f32,
    /// Dropout after the output projection (timm's `proj_drop`).
    pub dropout: f32,
    pub want_maps: bool,
}

/// Self-attention over `(B, S, DIM)` with `H` heads.
pub trait SelfAttention<const DIM: usize, const H: usize, D: Kernels> {
    fn forward<B: Dim, const S: usize, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        options: AttentionOptions,
    ) -> (
        Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        Option<AttentionMaps<B, H, S, D>>,
    );
}

const fn check_heads(dim: usize, h: usize, dh: usize) {
    assert!(h > 0 && dim == h * dh, "DIM must equal H * DH");
}

/// timm's `Attention`: one `qkv` map `DIM -> 3*DIM` (`QKV`), heads split from it, then `proj`.
#[derive(Debug, Clone)]
pub struct FusedAttention<
    const DIM: usize,
    const H: usize,
    const DH: usize,
    const QKV: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub qkv: Linear<DIM, QKV, E, D>,
    pub proj: Linear<DIM, DIM, E, D>,
}

impl<
        const DIM: usize,
        const H: usize,
        const DH: usize,
        const QKV: usize,
        E: Dtype,
        D: Storage<E>,
    > FusedAttention<DIM, H, DH, QKV, E, D>
{
    const CHECK: () = {
        check_heads(DIM, H, DH);
        assert!(QKV == 3 * DIM, "QKV must be 3 * DIM");
    };
}

impl<const DIM: usize, const H: usize, const DH: usize, const QKV: usize, E, D>
    TensorCollection<E, D> for FusedAttention<DIM, H, DH, QKV, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = FusedAttention<DIM, H, DH, QKV, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        let () = Self::CHECK;
        visitor.visit_fields(
            (
                Self::module("qkv", |s| &s.qkv, |s| &mut s.qkv),
                Self::module("proj", |s| &s.proj, |s| &mut s.proj),
            ),
            |(qkv, proj)| FusedAttention { qkv, proj },
        )
    }
}

impl<const DIM: usize, const H: usize, const DH: usize, const QKV: usize, D: Kernels>
    SelfAttention<DIM, H, D> for FusedAttention<DIM, H, DH, QKV, f32, D>
{
    fn forward<B: Dim, const S: usize, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        options: AttentionOptions,
    ) -> (
        Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        Option<AttentionMaps<B, H, S, D>>,
    ) {
        let () = Self::CHECK;
        let (merged, maps) = D::attention::<B, S, H, DH, DIM, QKV, T>(
            linear(&self.qkv, x),
            options.attention_dropout,
            options.mode,
            options.want_maps,
        );
        (
            dropout(linear(&self.proj, merged), options.dropout, options.mode),
            maps,
        )
    }
}

/// `H` independent `DH -> DH` linear maps, one per head (the course's `q_mappings[h]`),
/// stored stacked: `weight (H, DH, DH)` (out, in per head), `bias (H, DH)`.
#[derive(Debug, Clone)]
pub struct HeadLinear<const H: usize, const DH: usize, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank3<H, DH, DH>, E, D>,
    pub bias: Tensor<Rank2<H, DH>, E, D>,
}

impl<const H: usize, const DH: usize, E, D> TensorCollection<E, D> for HeadLinear<H, DH, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = HeadLinear<H, DH, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        use super::init::uniform_fan_in;
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(uniform_fan_in::<_, E, D, DH>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(uniform_fan_in::<_, E, D, DH>),
                ),
            ),
            |(weight, bias)| HeadLinear { weight, bias },
        )
    }
}

impl<const H: usize, const DH: usize, D: Device<f32>> HeadLinear<H, DH, f32, D> {
    /// `(H, N, DH) -> (H, N, DH)`: head `h`'s rows go through head `h`'s map.
    fn forward<T: Tape<f32, D>>(
        &self,
        x: Tensor<(Const<H>, usize, Const<DH>), f32, D, T>,
    ) -> Tensor<(Const<H>, usize, Const<DH>), f32, D, T> {
        let shape = *x.shape();
        let bias = self
            .bias
            .retaped::<T>()
            .broadcast_like::<_, Axis<1>>(&shape);
        x.matmul(self.weight.retaped::<T>().permute::<_, Axes3<0, 2, 1>>()) + bias
    }
}

/// The course's `MyMSA`: per-head q, k, v maps on the head's slice of the token, no output projection.
#[derive(Debug, Clone)]
pub struct PerHeadAttention<
    const DIM: usize,
    const H: usize,
    const DH: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub q: HeadLinear<H, DH, E, D>,
    pub k: HeadLinear<H, DH, E, D>,
    pub v: HeadLinear<H, DH, E, D>,
}

impl<const DIM: usize, const H: usize, const DH: usize, E: Dtype, D: Storage<E>>
    PerHeadAttention<DIM, H, DH, E, D>
{
    const CHECK: () = check_heads(DIM, H, DH);
}

impl<const DIM: usize, const H: usize, const DH: usize, E, D> TensorCollection<E, D>
    for PerHeadAttention<DIM, H, DH, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = PerHeadAttention<DIM, H, DH, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        let () = Self::CHECK;
        visitor.visit_fields(
            (
                Self::module("q", |s| &s.q, |s| &mut s.q),
                Self::module("k", |s| &s.k, |s| &mut s.k),
                Self::module("v", |s| &s.v, |s| &mut s.v),
            ),
            |(q, k, v)| PerHeadAttention { q, k, v },
        )
    }
}

impl<const DIM: usize, const H: usize, const DH: usize, D: Kernels> SelfAttention<DIM, H, D>
    for PerHeadAttention<DIM, H, DH, f32, D>
{
    fn forward<B: Dim, const S: usize, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        options: AttentionOptions,
    ) -> (
        Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        Option<AttentionMaps<B, H, S, D>>,
    ) {
        let () = Self::CHECK;
        let b = x.shape().0;
        let rows = b.size() * S;
        // (B, S, DIM) -> (H, B*S, DH): one batched matmul per map, no broadcast weights.
        let per_head = x
            .reshape_like(&(rows, Const::<H>, Const::<DH>))
            .permute::<_, Axes3<1, 0, 2>>()
            .reshape_like(&(Const::<H>, rows, Const::<DH>));
        let qkv = [
            self.q.forward(per_head.with_empty_tape()),
            self.k.forward(per_head.with_empty_tape()),
            self.v.forward(per_head),
        ]
        .stack();
        D::attention_per_head::<B, S, H, DH, DIM, T>(
            qkv,
            b,
            options.attention_dropout,
            options.mode,
            options.want_maps,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: usize = 2;
    const S: usize = 5;
    const DIM: usize = 8;
    const H: usize = 2;
    const DH: usize = DIM / H;

    /// Per-head q, k, v rows of one image: `[head][token][feature]`.
    type Heads = Vec<Vec<Vec<f64>>>;

    /// `softmax(q kᵀ / sqrt(DH)) v` for one image, by hand: (output `(S, DIM)` heads merged, weights `[h][s][t]`).
    fn naive_attend(q: &Heads, k: &Heads, v: &Heads) -> (Vec<Vec<f64>>, Heads) {
        let mut out = vec![vec![0.0; DIM]; S];
        let mut maps = vec![vec![vec![0.0; S]; S]; H];
        for h in 0..H {
            for s in 0..S {
                let scores: Vec<f64> = (0..S)
                    .map(|t| {
                        (0..DH).map(|d| q[h][s][d] * k[h][t][d]).sum::<f64>() / (DH as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                for t in 0..S {
                    maps[h][s][t] = exps[t] / total;
                    for d in 0..DH {
                        out[s][h * DH + d] += maps[h][s][t] * v[h][t][d];
                    }
                }
            }
        }
        (out, maps)
    }

    fn eval_with_maps() -> AttentionOptions {
        AttentionOptions {
            mode: Mode::Eval,
            attention_dropout: 0.1,
            dropout: 0.1,
            want_maps: true,
        }
    }

    fn assert_close(actual: &[f32], expected: &[f64], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (*a as f64 - e).abs() <= 1e-5,
                "{what}[{i}]: got {a}, expected {e}"
            );
        }
    }

    fn assert_rows_sum_to_one(maps: &[f32]) {
        for (r, row) in maps.chunks(S).enumerate() {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() <= 1e-5, "row {r} sums to {sum}");
        }
    }

    #[test]
    fn fused_attention_matches_naive_per_head_attention_with_projection() {
        let dev = Cpu::seed_from_u64(10);
        let attn: FusedAttention<DIM, H, DH, { 3 * DIM }, f32, Cpu> = BuildModule::build(&dev);
        let x: Tensor<Rank3<B, S, DIM>, f32, Cpu> = dev.sample_normal();
        let xs = x.as_vec();
        let (wqkv, bqkv) = (attn.qkv.weight.as_vec(), attn.qkv.bias.as_vec()); // (3*DIM, DIM) out x in
        let (wp, bp) = (attn.proj.weight.as_vec(), attn.proj.bias.as_vec());
        let (y, maps) = attn.forward(x, eval_with_maps());
        let maps = maps.expect("maps were asked for");
        assert_eq!(y.shape().concrete(), [B, S, DIM]);
        assert_eq!(maps.shape().concrete(), [B, H, S, S]);

        let (mut expected_y, mut expected_maps) = (Vec::new(), Vec::new());
        for b in 0..B {
            // timm: qkv output feature `which * DIM + h * DH + d` is q/k/v (which = 0/1/2), head h, feature d.
            let project = |which: usize| -> Heads {
                (0..H)
                    .map(|h| {
                        (0..S)
                            .map(|s| {
                                (0..DH)
                                    .map(|d| {
                                        let o = which * DIM + h * DH + d;
                                        bqkv[o] as f64
                                            + (0..DIM)
                                                .map(|i| {
                                                    wqkv[o * DIM + i] as f64
                                                        * xs[(b * S + s) * DIM + i] as f64
                                                })
                                                .sum::<f64>()
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect()
            };
            let (merged, weights) = naive_attend(&project(0), &project(1), &project(2));
            for row in &merged {
                for o in 0..DIM {
                    expected_y.push(
                        bp[o] as f64
                            + (0..DIM)
                                .map(|i| wp[o * DIM + i] as f64 * row[i])
                                .sum::<f64>(),
                    );
                }
            }
            expected_maps.extend(weights.into_iter().flatten().flatten());
        }
        assert_close(&y.as_vec(), &expected_y, "output");
        assert_close(&maps.as_vec(), &expected_maps, "maps");
        assert_rows_sum_to_one(&maps.as_vec());
    }

    #[test]
    fn per_head_attention_matches_naive_attention_on_each_heads_slice_without_projection() {
        let dev = Cpu::seed_from_u64(11);
        let attn: PerHeadAttention<DIM, H, DH, f32, Cpu> = BuildModule::build(&dev);
        let x: Tensor<Rank3<B, S, DIM>, f32, Cpu> = dev.sample_normal();
        let xs = x.as_vec();
        let (y, maps) = attn.forward(x, eval_with_maps());
        let maps = maps.expect("maps were asked for");
        assert_eq!(y.shape().concrete(), [B, S, DIM]);
        assert_eq!(maps.shape().concrete(), [B, H, S, S]);

        let (mut expected_y, mut expected_maps) = (Vec::new(), Vec::new());
        for b in 0..B {
            // The course's MyMSA: head h maps x[.., h*DH..(h+1)*DH] through its own (DH, DH) linear.
            let project = |map: &HeadLinear<H, DH, f32, Cpu>| -> Heads {
                let (w, bias) = (map.weight.as_vec(), map.bias.as_vec()); // (H, DH out, DH in), (H, DH)
                (0..H)
                    .map(|h| {
                        (0..S)
                            .map(|s| {
                                (0..DH)
                                    .map(|o| {
                                        bias[h * DH + o] as f64
                                            + (0..DH)
                                                .map(|i| {
                                                    w[(h * DH + o) * DH + i] as f64
                                                        * xs[(b * S + s) * DIM + h * DH + i] as f64
                                                })
                                                .sum::<f64>()
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect()
            };
            let (merged, weights) =
                naive_attend(&project(&attn.q), &project(&attn.k), &project(&attn.v));
            expected_y.extend(merged.into_iter().flatten());
            expected_maps.extend(weights.into_iter().flatten().flatten());
        }
        assert_close(&y.as_vec(), &expected_y, "output");
        assert_close(&maps.as_vec(), &expected_maps, "maps");
        assert_rows_sum_to_one(&maps.as_vec());
    }

    #[test]
    fn attention_returns_no_maps_unless_asked() {
        let dev = Cpu::seed_from_u64(12);
        let attn: FusedAttention<DIM, H, DH, { 3 * DIM }, f32, Cpu> = BuildModule::build(&dev);
        let x: Tensor<Rank3<B, S, DIM>, f32, Cpu> = dev.sample_normal();
        let options = AttentionOptions {
            want_maps: false,
            ..eval_with_maps()
        };
        let (with, _) = attn.forward(x.clone(), eval_with_maps());
        let (without, maps) = attn.forward(x, options);
        assert!(maps.is_none());
        assert_eq!(with.as_vec(), without.as_vec());
    }
}
