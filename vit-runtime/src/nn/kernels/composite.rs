//! The fused ops built from dfdx's own ops: what non-CPU devices run, and the reference
//! the CPU kernels are tested against.
use super::{Epilogue, Maps, Window};
use crate::nn::attention::AttentionMaps;
use crate::nn::cnn::windows;
use crate::nn::Mode;
use dfdx::prelude::*;

pub use crate::nn::composite_gelu as gelu;

pub fn linear<R: Dim, I: Dim, O: Dim, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(R, I), f32, D, T>,
    weight: Tensor<(O, I), f32, D, T>,
    bias: &Tensor<(O,), f32, D>,
) -> Tensor<(R, O), f32, D, T> {
    let y = x.matmul(weight.permute());
    let shape = *y.shape();
    y + bias.retaped::<T>().broadcast_like(&shape)
}

/// See [`super::Kernels::conv2d`]: im2col rows (below) times the weight reordered to
/// their `(ky, kx, c)` order, plus the bias, moved channels first, then the epilogue.
pub fn conv2d<O: Dim, D: Device<f32>, T: Tape<f32, D>>(
    x: Maps<D, T>,
    weight: Tensor<(O, usize), f32, D, T>,
    bias: &Tensor<(O,), f32, D>,
    window: Window,
    epilogue: Epilogue,
) -> Tensor<(usize, O, usize), f32, D, T> {
    let (batch, c, _, _) = *x.shape();
    let (o, taps) = (weight.shape().0, window.k * window.k);
    let pixels = window.out.0 * window.out.1;
    let weight = weight
        .reshape_like(&(o, c, taps))
        .permute::<_, Axes3<0, 2, 1>>()
        .reshape_like(&(o, taps * c));
    let y = linear(unfold(x, window), weight, bias)
        .reshape_like(&(batch, pixels, o))
        .permute::<_, Axes3<0, 2, 1>>();
    // A contiguous copy: callers reshape the result as channels-first maps.
    let y = y.reshape_like(&(batch, o, pixels));
    match epilogue {
        Epilogue::Identity => y,
        Epilogue::Relu => y.relu(),
    }
}

pub fn layer_norm<B: Dim, S: Dim, const M: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(B, S, Const<M>), f32, D, T>,
    weight: &Tensor<Rank1<M>, f32, D>,
    bias: &Tensor<Rank1<M>, f32, D>,
    eps: f32,
) -> Tensor<(B, S, Const<M>), f32, D, T> {
    let shape = *x.shape();
    let w = weight.retaped::<T>().broadcast_like(&shape);
    let b = bias.retaped::<T>().broadcast_like(&shape);
    x.normalize::<Axis<2>>(eps) * w + b
}

/// See [`super::Kernels::attention`].
pub fn attention<
    B: Dim,
    const S: usize,
    const H: usize,
    const DH: usize,
    const DIM: usize,
    const QKV: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    qkv: Tensor<(B, Const<S>, Const<QKV>), f32, D, T>,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let b = qkv.shape().0;
    let qkv = qkv
        .reshape_like(&(b, Const::<S>, Const::<3>, Const::<H>, Const::<DH>))
        .permute::<_, Axes5<2, 0, 3, 1, 4>>();
    attend_stacked(qkv, attention_dropout, mode, want_maps)
}

/// See [`super::Kernels::attention_per_head`].
pub fn attention_per_head<
    B: Dim,
    const S: usize,
    const H: usize,
    const DH: usize,
    const DIM: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    qkv: Tensor<(Const<3>, Const<H>, usize, Const<DH>), f32, D, T>,
    batch: B,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let qkv = qkv
        .reshape_like(&(Const::<3>, Const::<H>, batch, Const::<S>, Const::<DH>))
        .permute::<_, Axes5<0, 2, 1, 3, 4>>();
    attend_stacked(qkv, attention_dropout, mode, want_maps)
}

/// [`attend`] on q, k, v stacked as `(3, B, H, S, DH)`, heads merged to `(B, S, DIM)`.
fn attend_stacked<
    B: Dim,
    const S: usize,
    const H: usize,
    const DH: usize,
    const DIM: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    qkv: Tensor<(Const<3>, B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let batch = qkv.shape().1;
    let dev = qkv.device().clone();
    let q = qkv.with_empty_tape().select(dev.tensor(0usize));
    let k = qkv.with_empty_tape().select(dev.tensor(1usize));
    let v = qkv.select(dev.tensor(2usize));
    let (heads, maps) = attend(q, k, v, attention_dropout, mode, want_maps);
    let merged =
        heads
            .permute::<_, Axes4<0, 2, 1, 3>>()
            .reshape_like(&(batch, Const::<S>, Const::<DIM>));
    (merged, maps)
}

/// `softmax(q kᵀ / sqrt(DH)) v` per head on `(B, H, S, DH)` inputs, plus the weights
/// before attention dropout when `want_maps`.
pub fn attend<
    B: Dim,
    const H: usize,
    const S: usize,
    const DH: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    q: Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    k: Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    v: Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let scale = 1.0 / (DH as f32).sqrt();
    let weights = (q * scale)
        .matmul(k.permute::<_, Axes4<0, 1, 3, 2>>())
        .softmax::<Axis<3>>();
    let maps = want_maps.then(|| weights.retaped::<NoneTape>());
    let weights = if mode == Mode::Train && attention_dropout > 0.0 {
        weights.dropout(attention_dropout)
    } else {
        weights
    };
    (weights.matmul(v), maps)
}

/// im2col: `(B, C, H, W) -> (B * HO * WO, K * K * C)`, each row one window with its
/// columns in `(ky, kx, c)` order: the `K*K` strided views stacked, `(K*K, B, C, HO, WO)`,
/// reordered to `(B, HO, WO, K*K, C)`.
pub fn unfold<D: Device<f32>, T: Tape<f32, D>>(
    x: Maps<D, T>,
    w: Window,
) -> Tensor<(usize, usize), f32, D, T> {
    let (b, c, _, _) = *x.shape();
    let (ho, wo) = w.out;
    windows(x, w.k, w.stride, w.padding, w.out)
        .stack()
        .permute::<_, Axes5<1, 3, 4, 0, 2>>()
        .reshape_like(&(b * ho * wo, w.k * w.k * c))
}

/// See [`super::Kernels::max_pool`].
pub fn max_pool<D: Device<f32>, T: Tape<f32, D>>(x: Maps<D, T>, w: Window) -> Maps<D, T> {
    windows(x, w.k, w.stride, 0, w.out)
        .stack()
        .max::<_, Axis<0>>()
}
