//! Layer normalisation over the last (feature) axis, with timm's parameter names.
use dfdx::prelude::*;

/// `nn.LayerNorm(M, eps)`: `weight` (gamma) and `bias` (beta); the eps comes with each
/// forward pass (from the spec).
#[derive(Debug, Clone)]
pub struct LayerNorm<const M: usize, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank1<M>, E, D>,
    pub bias: Tensor<Rank1<M>, E, D>,
}

/// PyTorch's default eps, the spec's unless it says otherwise.
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

impl<const M: usize, D: super::kernels::Kernels> LayerNorm<M, f32, D> {
    /// Normalises each token of a `(batch, tokens, M)` tensor.
    pub fn forward<B: Dim, S: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, S, Const<M>), f32, D, T>,
        eps: f32,
    ) -> Tensor<(B, S, Const<M>), f32, D, T> {
        D::layer_norm(x, &self.weight, &self.bias, eps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_normalises_the_last_axis_with_biased_variance_and_eps_1e_5() {
        const M: usize = 6;
        let dev = Cpu::seed_from_u64(4);
        let mut norm: LayerNorm<M, f32, Cpu> = BuildModule::build(&dev);
        norm.weight = dev.sample_normal();
        norm.bias = dev.sample_normal();
        // Off-centre, wide input so that mean, variance and the affine part all matter.
        let x: Tensor<Rank3<2, 3, M>, f32, Cpu> = dev.sample_normal() * 3.0 + 1.5;
        let (xs, w, b) = (x.as_vec(), norm.weight.as_vec(), norm.bias.as_vec());
        let y = norm.forward(x, LAYER_NORM_EPS as f32).as_vec();

        for (row, (xs, ys)) in xs.chunks(M).zip(y.chunks(M)).enumerate() {
            let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / M as f64;
            let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / M as f64;
            for i in 0..M {
                let expected =
                    (xs[i] as f64 - mean) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64;
                assert!(
                    (ys[i] as f64 - expected).abs() <= 1e-5,
                    "row {row}[{i}]: got {}, expected {expected}",
                    ys[i]
                );
            }
        }
    }

    #[test]
    fn layer_norm_eps_is_inside_the_square_root_like_pytorch() {
        // A row with tiny variance tells eps-inside (PyTorch) from eps-outside the sqrt.
        let dev = Cpu::default();
        let norm: LayerNorm<2, f32, Cpu> = BuildModule::build(&dev);
        let x = dev.tensor([[[1e-3f32, -1e-3]]]);
        let y = norm.forward(x, LAYER_NORM_EPS as f32).as_vec();
        let expected = 1e-3 / (1e-6f64 + 1e-5).sqrt();
        assert!(
            (y[0] as f64 - expected).abs() <= 1e-5,
            "got {}, expected {expected}",
            y[0]
        );
        assert!(
            (y[1] as f64 + expected).abs() <= 1e-5,
            "got {}, expected {}",
            y[1],
            -expected
        );
    }

    #[test]
    fn layer_norm_starts_as_identity_affine_like_pytorch() {
        let dev = Cpu::seed_from_u64(5);
        let norm: LayerNorm<4, f32, Cpu> = BuildModule::build(&dev);
        assert_eq!(norm.weight.as_vec(), vec![1.0; 4]);
        assert_eq!(norm.bias.as_vec(), vec![0.0; 4]);
    }
}
