//! The layers' building blocks as functions over [`Kernels`] (the names of PyTorch's
//! `torch.nn.functional`): activations, linear maps on rows, dropout.

use super::kernels::{Kernels, Mode};
use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

/// Element-wise non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact (erf) GELU, as PyTorch's `nn.GELU()`.
    Gelu,
    Relu,
}

impl Activation {
    pub fn apply<S: Shape, D: Kernels, T: Tape<f32, D>>(
        self,
        x: Tensor<S, f32, D, T>,
    ) -> Tensor<S, f32, D, T> {
        match self {
            Activation::Gelu => gelu(x),
            Activation::Relu => relu(x),
        }
    }
}

/// The exact (erf) GELU, PyTorch's `nn.GELU()`: the device's [`Kernels::gelu`].
pub fn gelu<S: Shape, D: Kernels, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    D::gelu(x)
}

/// `max(x, 0)`: the device's [`Kernels::relu`] (on the CPU one parallel pass each way).
pub fn relu<S: Shape, D: Kernels, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    D::relu(x)
}

/// `x Wᵀ + b` over the last axis of `(B, S, I)`, computed on `(B * S, I)` rows.
///
/// dfdx's `(B, S, I) x (I, O)` matmul runs one `S x I` product per image, each too small
/// for its gemm to split over threads: a ViT training step spent a third of its time in
/// those, on one core. On rows it is one product ([`Kernels::linear`]) on every core.
pub fn linear_rows<B: Dim, S: Dim, const I: usize, const O: usize, D: Kernels, T>(
    x: Tensor<(B, S, Const<I>), f32, D, T>,
    weight: Tensor<Rank2<O, I>, f32, D, T>,
    bias: &Tensor<Rank1<O>, f32, D>,
) -> Tensor<(B, S, Const<O>), f32, D, T>
where
    T: Tape<f32, D>,
{
    let (b, s, _) = *x.shape();
    let rows = x.reshape_like(&(b.size() * s.size(), Const::<I>));
    D::linear(rows, weight, bias).reshape_like(&(b, s, Const::<O>))
}

/// [`linear_rows`] with a [`Linear`] layer's weight and bias.
pub fn linear<B: Dim, S: Dim, const I: usize, const O: usize, D: Kernels, T: Tape<f32, D>>(
    layer: &Linear<I, O, f32, D>,
    x: Tensor<(B, S, Const<I>), f32, D, T>,
) -> Tensor<(B, S, Const<O>), f32, D, T> {
    linear_rows(x, layer.weight.retaped::<T>(), &layer.bias)
}

/// A [`Linear`] layer on `(B, I)` vectors (classification heads, CNN layers): one
/// [`Kernels::linear`] product. dfdx's own `Linear::forward` runs its gemm 0.15, which has
/// no AVX-512 kernels on stable Rust: it was 13% of a CNN training step.
pub fn linear_2d<B: Dim, const I: usize, const O: usize, D: Kernels, T: Tape<f32, D>>(
    layer: &Linear<I, O, f32, D>,
    x: Tensor<(B, Const<I>), f32, D, T>,
) -> Tensor<(B, Const<O>), f32, D, T> {
    D::linear(x, layer.weight.retaped::<T>(), &layer.bias)
}

/// Dropout that is the identity outside training or at `p == 0`.
pub fn dropout<S: Shape, D: Kernels, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
    p: f32,
    mode: Mode,
) -> Tensor<S, f32, D, T> {
    if mode == Mode::Train && p > 0.0 {
        D::dropout(x, p)
    } else {
        x
    }
}
