//! Layer normalisation over the last (feature) axis, with timm's parameter names.
use dfdx::prelude::*;

/// `nn.LayerNorm(M)`: `weight` (gamma) and `bias` (beta), eps 1e-5 as in PyTorch.
#[derive(Debug, Clone)]
pub struct LayerNorm<const M: usize, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank1<M>, E, D>,
    pub bias: Tensor<Rank1<M>, E, D>,
}

pub const LAYER_NORM_EPS: f64 = 1e-5;

impl<const M: usize, E: Dtype, D: Device<E>> TensorCollection<E, D> for LayerNorm<M, E, D> {
    type To<E2: Dtype, D2: Device<E2>> = LayerNorm<M, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_to_ones(),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_to_zeros(),
                ),
            ),
            |(weight, bias)| LayerNorm { weight, bias },
        )
    }
}

impl<const M: usize, D: Device<f32>> LayerNorm<M, f32, D> {
    /// Normalises each token of a `(batch, tokens, M)` tensor.
    pub fn forward<B: Dim, S: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, S, Const<M>), f32, D, T>,
    ) -> Tensor<(B, S, Const<M>), f32, D, T> {
        let shape = *x.shape();
        let w = self.weight.retaped::<T>().broadcast_like(&shape);
        let b = self.bias.retaped::<T>().broadcast_like(&shape);
        x.normalize::<Axis<2>>(LAYER_NORM_EPS) * w + b
    }
}
