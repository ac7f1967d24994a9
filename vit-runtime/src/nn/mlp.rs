//! The transformer MLP: `fc1 -> activation -> dropout -> fc2 -> dropout` (timm's `Mlp`).
use super::functional::{dropout, linear, Activation};
use super::kernels::Mode;
use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

#[derive(Debug, Clone)]
pub struct Mlp<const DIM: usize, const HIDDEN: usize, E: Dtype, D: Storage<E>> {
    pub fc1: Linear<DIM, HIDDEN, E, D>,
    pub fc2: Linear<HIDDEN, DIM, E, D>,
}

impl<const DIM: usize, const HIDDEN: usize, E, D> TensorCollection<E, D> for Mlp<DIM, HIDDEN, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Mlp<DIM, HIDDEN, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("fc1", |s| &s.fc1, |s| &mut s.fc1),
                Self::module("fc2", |s| &s.fc2, |s| &mut s.fc2),
            ),
            |(fc1, fc2)| Mlp { fc1, fc2 },
        )
    }
}

impl<const DIM: usize, const HIDDEN: usize, D: super::kernels::Kernels> Mlp<DIM, HIDDEN, f32, D> {
    pub fn forward<B: Dim, S: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, S, Const<DIM>), f32, D, T>,
        activation: Activation,
        p: f32,
        mode: Mode,
    ) -> Tensor<(B, S, Const<DIM>), f32, D, T> {
        let hidden = dropout(activation.apply(linear(&self.fc1, x)), p, mode);
        dropout(linear(&self.fc2, hidden), p, mode)
    }
}
