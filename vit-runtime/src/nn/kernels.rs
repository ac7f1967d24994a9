//! The hot spots of a ViT or CNN step as single ops: linear layers, convolutions (with a
//! fused ReLU), max
//! pooling, GELU, ReLU, LayerNorm, batch norm, dropout and the attention core (scores, softmax,
//! attention dropout, weighted sum) for both q/k/v layouts.
//!
//! Built from dfdx's ops, each of these is a chain of 5-15 passes over memory, each pass
//! allocating its output and recording a backward closure, and most of them run on one core.
//! [`Kernels`] gives every device the composite version (the reference, and what CUDA runs);
//! the CPU overrides each op with one fused forward pass and one hand-written backward
//! pass (`Tape::add_backward_op`), parallel over rows. `tests/gradients.rs` and the tests
//! below check each fused op against its composite twin, values and gradients.
mod base;
pub mod composite;
mod cpu;
mod cpu_attention;
mod cpu_batch_norm;
mod cpu_conv;
mod cpu_gemm;
mod cpu_linear;
mod cpu_math;
#[cfg(test)]
mod tests;

pub use base::{
    read, AttentionMaps, BatchStatistics, Channels, Epilogue, Images, Maps, Mode, QkvLayout, Window,
};

use dfdx::prelude::*;

/// What a device, its tensors and its models must be for evaluation chunks to run on
/// several threads: `Send + Sync` in a CPU-only build. A build with the `cuda` feature asks
/// nothing: dfdx 0.13's `Cuda` holds a cudarc stream that is neither, so there every device
/// runs its chunks one after the other.
#[cfg(not(feature = "cuda"))]
pub trait Shareable: Send + Sync {}
#[cfg(not(feature = "cuda"))]
impl<T: Send + Sync + ?Sized> Shareable for T {}
/// What a device, its tensors and its models must be for evaluation chunks to run on
/// several threads: nothing in a build with the `cuda` feature (see the CPU-only build's).
#[cfg(feature = "cuda")]
pub trait Shareable {}
#[cfg(feature = "cuda")]
impl<T: ?Sized> Shareable for T {}

/// The fused ops a device offers; every method has the composite dfdx version as default.
pub trait Kernels: Device<f32> + Shareable {
    /// Forward FLOPs per pass when evaluating a larger batch (`None`: all at once): the
    /// batch runs in chunks of about this much work. On the CPU a ViT's activations for
    /// 1000 images are hundreds of MB, far beyond the caches, and each op's passes over
    /// them cost more than its arithmetic; a model as small as LightViT needs no chunks.
    const EVAL_CHUNK_FLOPS: Option<u64> = None;

    /// `f(0), ..., f(count - 1)` in order: independent pieces of work such as the chunks of
    /// an evaluation. One after the other by default (a GPU queues them anyway).
    fn map_chunks<R: Shareable>(count: usize, f: impl Fn(usize) -> R + Shareable) -> Vec<R> {
        (0..count).map(f).collect()
    }

    /// A convolution: `(B, C, H, W) -> (B, O, HO * WO)`, with PyTorch's `(O, C, K, K)`
    /// weight as `(O, C * K * K)` and one bias per output channel, then `epilogue`.
    fn conv2d<O: Dim, T: Tape<f32, Self>>(
        x: Maps<Self, T>,
        weight: Tensor<(O, usize), f32, Self, T>,
        bias: &Tensor<(O,), f32, Self>,
        window: Window,
        epilogue: Epilogue,
    ) -> Tensor<(usize, O, usize), f32, Self, T> {
        composite::conv2d(x, weight, bias, window, epilogue)
    }

    /// Max pooling (no padding): `(B, C, H, W) -> (B, C, HO, WO)`.
    fn max_pool<T: Tape<f32, Self>>(x: Maps<Self, T>, window: Window) -> Maps<Self, T> {
        composite::max_pool(x, window)
    }

    /// A linear layer on rows: `x Wᵀ + b`, `(R, I) -> (R, O)`.
    fn linear<R: Dim, I: Dim, O: Dim, T: Tape<f32, Self>>(
        x: Tensor<(R, I), f32, Self, T>,
        weight: Tensor<(O, I), f32, Self, T>,
        bias: &Tensor<(O,), f32, Self>,
    ) -> Tensor<(R, O), f32, Self, T> {
        composite::linear(x, weight, bias)
    }

    /// `max(x, 0)`, with gradient 0 at 0 (as PyTorch).
    fn relu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        x.relu()
    }

    /// The exact (erf) GELU, `x * Phi(x)`.
    fn gelu<S: Shape, T: Tape<f32, Self>>(x: Tensor<S, f32, Self, T>) -> Tensor<S, f32, Self, T> {
        composite::gelu(x)
    }

    /// `nn.LayerNorm(M)` over the last axis of a `(B, S, M)` tensor.
    fn layer_norm<B: Dim, S: Dim, const M: usize, T: Tape<f32, Self>>(
        x: Tensor<(B, S, Const<M>), f32, Self, T>,
        weight: &Tensor<Rank1<M>, f32, Self>,
        bias: &Tensor<Rank1<M>, f32, Self>,
        eps: f32,
    ) -> Tensor<(B, S, Const<M>), f32, Self, T> {
        composite::layer_norm(x, weight, bias, eps)
    }

    /// `nn.BatchNorm2d` on `(B, C, H, W)` maps: per channel, normalised with `running`
    /// (mean, variance), or, when it is `None` (training), with the batch's own mean and
    /// biased variance, which are returned for the running statistics.
    fn batch_norm<B: Dim, const C: usize, const H: usize, const W: usize, T: Tape<f32, Self>>(
        x: Images<B, C, H, W, Self, T>,
        weight: &Channels<C, Self>,
        bias: &Channels<C, Self>,
        running: Option<(&Channels<C, Self>, &Channels<C, Self>)>,
        eps: f32,
    ) -> (Images<B, C, H, W, Self, T>, Option<BatchStatistics>) {
        composite::batch_norm(x, weight, bias, running, eps)
    }

    /// Inverted dropout: zero each element with probability `p`, scale the rest by `1/(1-p)`.
    fn dropout<S: Shape, T: Tape<f32, Self>>(
        x: Tensor<S, f32, Self, T>,
        p: f32,
    ) -> Tensor<S, f32, Self, T> {
        x.dropout(p)
    }

    /// The attention core on timm's fused `qkv` output `(B, S, 3 * DIM)`:
    /// `softmax(q kᵀ / sqrt(DH))`, attention dropout, `· v`, heads merged to `(B, S, DIM)`.
    /// Also returns the weights before dropout when `want_maps`.
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
        composite::attention::<B, S, H, DH, DIM, QKV, Self, T>(
            qkv,
            attention_dropout,
            mode,
            want_maps,
        )
    }

    /// The same core on the per-head maps' outputs stacked as `(3, H, B * S, DH)`.
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
        composite::attention_per_head::<B, S, H, DH, DIM, Self, T>(
            qkv,
            batch,
            attention_dropout,
            mode,
            want_maps,
        )
    }
}

#[cfg(feature = "cuda")]
impl Kernels for Cuda {}
