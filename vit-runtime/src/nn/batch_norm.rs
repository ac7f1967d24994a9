//! Batch normalisation of feature maps, as PyTorch's `nn.BatchNorm2d`, with its names.
//!
//! In training mode a map is normalised with its batch's per-channel mean and (biased)
//! variance, and the running statistics move toward them (the variance unbiased); in
//! evaluation mode the running statistics normalise. Models take `&self` in their forward
//! pass, so the layer hands the batch's statistics back ([`BatchStatistics`]) and
//! [`BatchNorm2d::update_running`] applies them once the forward pass is done; the result
//! is the same as PyTorch's update inside the forward, since training-mode outputs never
//! read the running statistics.
use super::kernels::{read, BatchStatistics, Kernels, Mode};
use dfdx::prelude::*;

/// `nn.BatchNorm2d(C, eps, momentum)`: `weight` (gamma) and `bias` (beta) are trained,
/// `running_mean` and `running_var` are saved with the weights but never trained.
#[derive(Debug, Clone)]
pub struct BatchNorm2d<const C: usize, E: Dtype, D: Storage<E>> {
    pub weight: Tensor<Rank1<C>, E, D>,
    pub bias: Tensor<Rank1<C>, E, D>,
    pub running_mean: Tensor<Rank1<C>, E, D>,
    pub running_var: Tensor<Rank1<C>, E, D>,
}

impl<const C: usize, E: Dtype, D: Device<E>> TensorCollection<E, D> for BatchNorm2d<C, E, D> {
    type To<E2: Dtype, D2: Device<E2>> = BatchNorm2d<C, E2, D2>;

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
                Self::tensor(
                    "running_mean",
                    |s| &s.running_mean,
                    |s| &mut s.running_mean,
                    TensorOptions::detached(|t| t.try_fill_with_zeros()),
                ),
                Self::tensor(
                    "running_var",
                    |s| &s.running_var,
                    |s| &mut s.running_var,
                    TensorOptions::detached(|t| t.try_fill_with_ones()),
                ),
            ),
            |(weight, bias, running_mean, running_var)| BatchNorm2d {
                weight,
                bias,
                running_mean,
                running_var,
            },
        )
    }
}

impl<const C: usize, D: Kernels> BatchNorm2d<C, f32, D> {
    /// Normalises `(B, C, H, W)` maps per channel. In `Mode::Train` the batch's statistics
    /// normalise and are pushed onto `stats`; in `Mode::Eval` the running ones normalise.
    pub fn forward<B: Dim, const H: usize, const W: usize, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T>,
        mode: Mode,
        eps: f32,
        stats: &mut Vec<BatchStatistics>,
    ) -> Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T> {
        let running = (mode == Mode::Eval).then_some((&self.running_mean, &self.running_var));
        let (y, batch) = D::batch_norm(x, &self.weight, &self.bias, running, eps);
        stats.extend(batch);
        y
    }

    /// Moves the running statistics toward a training batch's, as PyTorch does with
    /// `momentum`: `running = (1 - momentum) running + momentum batch`, the variance
    /// unbiased (`count / (count - 1)`; left as it is for a single value per channel).
    pub fn update_running(&mut self, batch: &BatchStatistics, momentum: f32) {
        let blend = |running: &mut Tensor<Rank1<C>, f32, D>, batch: &[f32], factor: f32| {
            let mut values = read(running);
            for (r, b) in values.iter_mut().zip(batch) {
                *r = (1.0 - momentum) * *r + momentum * factor * b;
            }
            running.copy_from(&values);
        };
        blend(&mut self.running_mean, &batch.mean, 1.0);
        if batch.count > 1 {
            let unbiased = batch.count as f32 / (batch.count - 1) as f32;
            blend(&mut self.running_var, &batch.var, unbiased);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: usize = 3;

    /// The per-channel mean and biased variance of a `(B, C, H, W)` batch, in f64.
    fn channel_statistics(x: &[f32], hw: usize) -> Vec<(f64, f64)> {
        (0..C)
            .map(|c| {
                let values: Vec<f64> = x
                    .chunks(C * hw)
                    .flat_map(|image| &image[c * hw..(c + 1) * hw])
                    .map(|&v| v as f64)
                    .collect();
                let n = values.len() as f64;
                let mean = values.iter().sum::<f64>() / n;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                (mean, var)
            })
            .collect()
    }

    fn layer(dev: &Cpu) -> BatchNorm2d<C, f32, Cpu> {
        let mut norm: BatchNorm2d<C, f32, Cpu> = BuildModule::build(dev);
        norm.weight = dev.tensor([0.5, 2.0, -1.0]);
        norm.bias = dev.tensor([0.1, -0.3, 0.7]);
        norm.running_mean = dev.tensor([1.0, -2.0, 0.5]);
        norm.running_var = dev.tensor([4.0, 0.25, 1.0]);
        norm
    }

    #[test]
    fn training_mode_normalises_with_the_batchs_statistics_and_moves_the_running_ones() {
        let dev = Cpu::seed_from_u64(3);
        let mut norm = layer(&dev);
        let x: Tensor<Rank4<4, C, 2, 5>, f32, Cpu> = dev.sample_normal() * 3.0 + 1.5;
        let xs = x.as_vec();
        let mut stats = Vec::new();
        let y = norm.forward(x, Mode::Train, 1e-5, &mut stats).as_vec();
        let expected = channel_statistics(&xs, 10);
        let (w, b) = (norm.weight.as_vec(), norm.bias.as_vec());
        for (i, (&xv, &yv)) in xs.iter().zip(&y).enumerate() {
            let c = (i / 10) % C;
            let (mean, var) = expected[c];
            let want = (xv as f64 - mean) / (var + 1e-5).sqrt() * w[c] as f64 + b[c] as f64;
            assert!((yv as f64 - want).abs() < 1e-5, "[{i}]: {yv} vs {want}");
        }

        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].count, 40);
        let (old_mean, old_var) = (norm.running_mean.as_vec(), norm.running_var.as_vec());
        norm.update_running(&stats[0], 0.1);
        for c in 0..C {
            let (mean, var) = expected[c];
            let want_mean = 0.9 * old_mean[c] as f64 + 0.1 * mean;
            let want_var = 0.9 * old_var[c] as f64 + 0.1 * var * 40.0 / 39.0;
            assert!((norm.running_mean.as_vec()[c] as f64 - want_mean).abs() < 1e-5);
            assert!((norm.running_var.as_vec()[c] as f64 - want_var).abs() < 1e-5);
        }
    }

    #[test]
    fn evaluation_mode_normalises_with_the_running_statistics_and_records_nothing() {
        let dev = Cpu::seed_from_u64(5);
        let norm = layer(&dev);
        let x: Tensor<Rank4<2, C, 3, 1>, f32, Cpu> = dev.sample_normal();
        let xs = x.as_vec();
        let mut stats = Vec::new();
        let y = norm.forward(x, Mode::Eval, 1e-3, &mut stats).as_vec();
        assert!(stats.is_empty());
        let (w, b) = (norm.weight.as_vec(), norm.bias.as_vec());
        let (m, v) = (norm.running_mean.as_vec(), norm.running_var.as_vec());
        for (i, (&xv, &yv)) in xs.iter().zip(&y).enumerate() {
            let c = (i / 3) % C;
            let want = (xv - m[c]) / (v[c] + 1e-3).sqrt() * w[c] + b[c];
            assert!((yv - want).abs() < 1e-6, "[{i}]: {yv} vs {want}");
        }
    }

    #[test]
    fn running_statistics_are_saved_but_not_trained() {
        let norm = layer(&Cpu::default());
        assert_eq!(norm.num_trainable_params(), 2 * C);
    }
}
