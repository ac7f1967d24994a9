//! Layers the generated models are built from.
//!
//! Each layer takes every size as a const parameter, derived ones included (head dim,
//! `3 * embed_dim`, conv output sizes): stable Rust cannot compute them from the others,
//! so `vit-macros` computes them from the spec and passes them in. A layer checks the
//! relations between its parameters at compile time (`CHECK` consts), so a hand-written
//! instantiation with inconsistent sizes fails to build too.

pub mod attention;
pub mod block;
pub mod cnn;
pub mod init;
pub mod kernels;
pub mod mlp;
pub mod norm;
pub mod patches;
pub mod positions;
pub mod tokens;

pub use attention::{FusedAttention, PerHeadAttention};
pub use block::EncoderBlock;
pub use cnn::{Conv2d, Pool};
pub use kernels::{Epilogue, Kernels};
pub use mlp::Mlp;
pub use norm::LayerNorm;
pub use patches::{PatchConv, PatchEmbed};

/// Whether stochastic layers (dropout, drop path) are active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Element-wise non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact (erf) GELU, as PyTorch's `nn.GELU()`.
    Gelu,
    Relu,
}

use dfdx::prelude::*;

/// dfdx's prelude exports module *builders*; the built linear layer lives here.
pub use dfdx::nn::modules::Linear;

impl Activation {
    pub fn apply<S: Shape, D: Kernels, T: Tape<f32, D>>(
        self,
        x: Tensor<S, f32, D, T>,
    ) -> Tensor<S, f32, D, T> {
        match self {
            Activation::Gelu => D::gelu(x),
            Activation::Relu => relu(x),
        }
    }
}

/// `max(x, 0)`: the device's [`Kernels::relu`] (on the CPU one parallel pass each way).
pub fn relu<S: Shape, D: Kernels, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    D::relu(x)
}

/// The exact GELU `x * Phi(x)` with a correct gradient, from dfdx ops
/// (the fused [`Kernels::gelu`] is checked against it).
///
/// dfdx 0.13's `accurate_gelu` computes the right values but its derivative
/// (`accurate_gelu/cpu_kernel.rs`) gives `Phi(x) + sqrt(2) x phi(x)` instead of
/// `Phi(x) + x phi(x)`. We keep its forward and add `(sqrt(2) - 1) (phi(x) - phi(x))`
/// with the second `phi` detached: exactly zero in value, `-(sqrt(2) - 1) x phi(x)` in
/// gradient, which cancels the error. Pinned by a finite-difference test.
pub fn composite_gelu<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    let phi = (x.with_empty_tape().square() * -0.5).exp()
        * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
    // `* 1.0` gives the detached copy its own id, so no gradient is routed back to `phi`.
    let detached = phi.retaped::<NoneTape>() * 1.0;
    x.accurate_gelu() + (phi - detached) * (std::f32::consts::SQRT_2 - 1.0)
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

/// Gives `x` a tensor identity of its own before it is sliced.
///
/// dfdx 0.13's `slice` backward *assigns* its gradient into the source's gradient instead
/// of adding to it (`tensor_ops/slice/cpu_kernel.rs`), so two slices of one tensor
/// overwrite each other's gradients. Slicing `x * 1.0` instead gives every slice its own
/// source, whose backward adds correctly.
pub fn own_source<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    x * 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_gradient_is_phi_plus_x_times_density() {
        let dev = Cpu::default();
        let xs = [-3.0f32, -1.5, -0.4, 0.3, 1.0, 2.5];
        let x: Tensor<Rank1<6>, f32, _> = dev.tensor(xs);
        let y = composite_gelu(x.leaky_trace());
        let values = y.as_vec();
        let grads = y.sum().backward();
        for ((&x, &gx), &y) in xs.iter().zip(&grads.get(&x).as_vec()).zip(&values) {
            // Phi(x) = gelu(x) / x; phi(x) = exp(-x^2/2) / sqrt(2 pi).
            let (x, y) = (x as f64, y as f64);
            let expected = y / x + x * (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (gx as f64 - expected).abs() < 1e-5,
                "x {x}: grad {gx}, expected {expected}"
            );
        }
    }

    #[test]
    fn gelu_values_are_dfdx_exact_gelu() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<4>, f32, _> = dev.tensor([-2.0, -0.1, 0.7, 3.0]);
        assert_eq!(
            composite_gelu(x.clone()).as_vec(),
            x.accurate_gelu().as_vec()
        );
    }

    #[test]
    fn overlapping_slices_of_own_sources_add_their_gradients() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<3>, f32, _> = dev.tensor([1.0, 2.0, 3.0]);
        let t = x.leaky_trace();
        let a = own_source(t.with_empty_tape()).slice((0..2,));
        let b = own_source(t).slice((1..3,));
        let grads = (a + b).sum().backward();
        assert_eq!(grads.get(&x).as_vec(), vec![1.0, 2.0, 1.0]);
    }
}
