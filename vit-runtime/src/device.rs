//! The compute devices a run can use: CPU always, CUDA when built with `--features cuda`.
use dfdx::prelude::*;

/// A dfdx device that can be created from a seed (model init, dropout and drop path
/// draw from the device's generator, so a seed makes a run reproducible).
pub trait SeededDevice: crate::nn::Kernels + Clone + Synchronize {
    const NAME: &'static str;
    fn seeded(seed: u64) -> anyhow::Result<Self>;
}

impl SeededDevice for Cpu {
    const NAME: &'static str = "cpu";
    fn seeded(seed: u64) -> anyhow::Result<Self> {
        Ok(Cpu::seed_from_u64(seed))
    }
}

#[cfg(feature = "cuda")]
impl SeededDevice for Cuda {
    const NAME: &'static str = "cuda";
    fn seeded(seed: u64) -> anyhow::Result<Self> {
        Cuda::try_seed_from_u64(seed)
            .map_err(|e| anyhow::anyhow!("cannot open CUDA device 0: {e:?}"))
    }
}

/// What `--device` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when this binary was built with it and a GPU answers, else CPU.
    Auto,
}

/// The device kind a run will use, or why the choice cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> anyhow::Result<Resolved> {
        match self {
            DeviceChoice::Cpu => Ok(Resolved::Cpu),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda => Cuda::try_seed_from_u64(0)
                .map(|_| Resolved::Cuda)
                .map_err(|e| anyhow::anyhow!("--device cuda: no usable CUDA device ({e:?})")),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda => anyhow::bail!(
                "--device cuda: this binary was built without CUDA; rebuild with \
                 `cargo run -p vit-runtime --release --features cuda -- ...` (needs nvcc), or use --device cpu"
            ),
            #[cfg(feature = "cuda")]
            DeviceChoice::Auto => Ok(if Cuda::try_seed_from_u64(0).is_ok() { Resolved::Cuda } else { Resolved::Cpu }),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Auto => Ok(Resolved::Cpu),
        }
    }
}
