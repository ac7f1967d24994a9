//! Parameter initialisers that dfdx does not ship.
use dfdx::prelude::*;
use rand_distr::{Distribution, Normal};

/// timm's `trunc_normal_(std=std)`: N(0, std) redrawn until inside timm's default
/// bounds `[-2, 2]` (absolute, not in units of std, so for std 0.02 nothing is cut).
/// The stream is seeded from the device's RNG, so a model's init follows its seed.
pub fn fill_trunc_normal<S: Shape, E, D>(t: &mut Tensor<S, E, D>, std: f32) -> Result<(), D::Err>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    // Draw the seed from the device so that model init stays reproducible from its seed.
    let mut draws: Tensor<Rank1<2>, E, D> = t.device().zeros();
    draws.try_fill_with_distr(rand_distr::Uniform::new(E::zero(), E::one()))?;
    let draws: Vec<f64> = draws
        .as_vec()
        .into_iter()
        .map(|x| x.to_f64().unwrap_or(0.5))
        .collect();
    let seed = (draws[0] * u32::MAX as f64) as u64 ^ (((draws[1] * u32::MAX as f64) as u64) << 32);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, std).expect("std is positive");
    let values: Vec<E> = (0..t.shape().num_elements())
        .map(|_| loop {
            let v = normal.sample(&mut rng);
            if v.abs() <= 2.0 {
                break E::from(v).expect("f32 converts to every float dtype");
            }
        })
        .collect();
    t.copy_from(&values);
    Ok(())
}

/// PyTorch's default init of conv and linear layers, U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
/// for a fan-in known as a constant (a linear map's input width).
pub(crate) fn uniform_fan_in<S: Shape, E, D, const FAN_IN: usize>(
    t: &mut Tensor<S, E, D>,
) -> Result<(), D::Err>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    fill_uniform_fan_in(t, FAN_IN)
}

/// PyTorch's default init of conv and linear layers with fan-in `fan_in` (a conv's
/// `in_channels * kernel * kernel`, which stable Rust cannot write as a const argument).
pub(crate) fn fill_uniform_fan_in<S: Shape, E, D>(
    t: &mut Tensor<S, E, D>,
    fan_in: usize,
) -> Result<(), D::Err>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    let b = E::one() / E::from(fan_in).expect("fan-in fits the dtype").sqrt();
    t.try_fill_with_distr(rand_distr::Uniform::new(-b, b))
}
