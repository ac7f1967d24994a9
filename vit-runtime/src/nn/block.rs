//! The pre-norm encoder block:
//! `x + drop_path(attn(norm1(x)))`, then `x + drop_path(mlp(norm2(x)))`.
use super::attention::{AttentionMaps, AttentionOptions, SelfAttention};
use super::{Activation, LayerNorm, Mlp, Mode};
use dfdx::prelude::*;

/// What a block's forward pass needs besides its tensors (all from the spec).
#[derive(Debug, Clone, Copy)]
pub struct BlockOptions {
    pub mode: Mode,
    pub activation: Activation,
    pub dropout: f32,
    pub attention_dropout: f32,
    /// This block's stochastic-depth rate.
    pub drop_path: f32,
    pub want_maps: bool,
}

#[derive(Debug, Clone)]
pub struct EncoderBlock<const DIM: usize, const H: usize, const HIDDEN: usize, Attn, E: Dtype, D: Storage<E>> {
    pub norm1: LayerNorm<DIM, E, D>,
    pub attn: Attn,
    pub norm2: LayerNorm<DIM, E, D>,
    pub mlp: Mlp<DIM, HIDDEN, E, D>,
}

impl<const DIM: usize, const H: usize, const HIDDEN: usize, Attn, E, D> TensorCollection<E, D>
    for EncoderBlock<DIM, H, HIDDEN, Attn, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
    Attn: TensorCollection<E, D>,
{
    type To<E2: Dtype, D2: Device<E2>> = EncoderBlock<DIM, H, HIDDEN, Attn::To<E2, D2>, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("norm1", |s| &s.norm1, |s| &mut s.norm1),
                Self::module("attn", |s| &s.attn, |s| &mut s.attn),
                Self::module("norm2", |s| &s.norm2, |s| &mut s.norm2),
                Self::module("mlp", |s| &s.mlp, |s| &mut s.mlp),
            ),
            |(norm1, attn, norm2, mlp)| EncoderBlock { norm1, attn, norm2, mlp },
        )
    }
}

impl<const DIM: usize, const H: usize, const HIDDEN: usize, Attn, D> EncoderBlock<DIM, H, HIDDEN, Attn, f32, D>
where
    D: Device<f32>,
    Attn: SelfAttention<DIM, H, D>,
{
    /// `(B, S, DIM) -> (B, S, DIM)`, plus this block's attention maps if asked for.
    pub fn forward<B: Dim, const S: usize, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
        options: BlockOptions,
    ) -> (Tensor<(B, Const<S>, Const<DIM>), f32, D, T>, Option<AttentionMaps<B, H, S, D>>) {
        let attention = AttentionOptions {
            mode: options.mode,
            attention_dropout: options.attention_dropout,
            dropout: options.dropout,
            want_maps: options.want_maps,
        };
        let (a, maps) = self.attn.forward(self.norm1.forward(x.with_empty_tape()), attention);
        let x = drop_path(a, options.drop_path, options.mode) + x;
        let m = self.mlp.forward(
            self.norm2.forward(x.with_empty_tape()),
            options.activation,
            options.dropout,
            options.mode,
        );
        (drop_path(m, options.drop_path, options.mode) + x, maps)
    }
}

/// Stochastic depth: zero a residual branch for a random `p` of the samples in
/// training and scale the survivors by `1 / (1 - p)` (timm's `DropPath`).
pub fn drop_path<B: Dim, S: Dim, M: Dim, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(B, S, M), f32, D, T>,
    p: f32,
    mode: Mode,
) -> Tensor<(B, S, M), f32, D, T> {
    if mode == Mode::Eval || p <= 0.0 {
        return x;
    }
    let shape = *x.shape();
    let dev = x.device().clone();
    let keep = 1.0 - p;
    let draws: Tensor<(B,), f32, D> = dev.sample_uniform_like(&(shape.0,));
    let mask: Vec<f32> = draws.as_vec().into_iter().map(|u| if u < keep { 1.0 / keep } else { 0.0 }).collect();
    let mask = dev.tensor_from_vec(mask, (shape.0,)).broadcast_like::<_, Axes2<1, 2>>(&shape);
    x * mask
}
