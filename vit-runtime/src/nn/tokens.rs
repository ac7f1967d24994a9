//! Assembling the token sequence: `[cls, (dist,) patches...] + positions`, and pooling.
use dfdx::prelude::*;

/// Learned `(1, 1, DIM)` tokens (timm's `cls_token`, `dist_token`), in order, repeated over the batch.
pub fn broadcast_tokens<
    B: Dim,
    const P: usize,
    const DIM: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    tokens: [&Tensor<Rank3<1, 1, DIM>, f32, D>; P],
    batch: B,
) -> Tensor<(B, Const<P>, Const<DIM>), f32, D, T> {
    tokens
        .map(|t| t.retaped::<T>().reshape::<Rank1<DIM>>())
        .stack()
        .broadcast_like::<_, Axis<0>>(&(batch, Const::<P>, Const::<DIM>))
}

/// Token `index` of every sequence: `(B, S, DIM) -> (B, DIM)` (class token: 0, distillation: 1).
pub fn token_at<B: Dim, const S: usize, const DIM: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    index: usize,
) -> Tensor<(B, Const<DIM>), f32, D, T> {
    let b = x.shape().0;
    // DeiT slices the class and the distillation token out of the same tensor.
    super::kernels::composite::own_source(x)
        .slice((.., index..index + 1, ..))
        .reshape_like(&(b, Const::<DIM>))
}

/// Prepends `prefix` tokens to `patches` and adds the `(1, S, DIM)` positional table.
pub fn assemble<
    B: Dim,
    const P: usize,
    const N: usize,
    const S: usize,
    const DIM: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    prefix: Option<Tensor<(B, Const<P>, Const<DIM>), f32, D, T>>,
    patches: Tensor<(B, Const<N>, Const<DIM>), f32, D, T>,
    positions: Tensor<Rank3<1, S, DIM>, f32, D, T>,
) -> Tensor<(B, Const<S>, Const<DIM>), f32, D, T> {
    let b = patches.shape().0;
    // Const + Const has no stable output type, so concatenate along a `usize` axis.
    let dynamic = |t: Tensor<(B, usize, Const<DIM>), f32, D, T>| t;
    let seq = match prefix {
        Some(prefix) => (
            dynamic(prefix.reshape_like(&(b, P, Const::<DIM>))),
            dynamic(patches.reshape_like(&(b, N, Const::<DIM>))),
        )
            .concat_along(Axis::<1>),
        None => dynamic(patches.reshape_like(&(b, N, Const::<DIM>))),
    };
    let seq = seq
        .try_realize::<(B, Const<S>, Const<DIM>)>()
        .unwrap_or_else(|_| panic!("vit-macros computes the sequence length {S} as P + N"));
    let positions = positions
        .reshape::<Rank2<S, DIM>>()
        .broadcast_like::<_, Axis<0>>(&(b, Const::<S>, Const::<DIM>));
    seq + positions
}
