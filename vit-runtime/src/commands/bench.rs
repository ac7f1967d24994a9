//! `bench`: training and inference throughput and peak memory on random inputs.
use super::{flags, model_names, with_model, DeviceCommand};
use clap::Args;
use vit_runtime::bench::{measure, BenchConfig, BenchReport};
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::dfdx::nn::BuildModule;
use vit_runtime::model::{ImageClassifier, Visitor};

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Spec name (see `models`). Run one model per process so peak memory is its own.
    #[arg(value_parser = model_names())]
    model: String,
    /// Where to run: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto`.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Batch size of the timed training steps (forward, loss, backward, optimiser update).
    #[arg(long, default_value_t = 128, value_parser = flags::at_least_one)]
    train_batch: usize,
    /// Batch size of the timed inference passes.
    #[arg(long, default_value_t = 1000, value_parser = flags::at_least_one)]
    infer_batch: usize,
    /// Untimed steps before measuring (allocator and caches warm up).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 20, value_parser = flags::at_least_one)]
    steps: usize,
    /// Print one JSON line instead of a sentence (for `bench/compare.py`).
    #[arg(long)]
    json: bool,
}

impl DeviceCommand for BenchArgs {
    fn device(&self) -> DeviceChoice {
        self.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        let config = BenchConfig {
            train_batch: self.train_batch,
            infer_batch: self.infer_batch,
            warmup: self.warmup,
            steps: self.steps,
        };
        let report = with_model::<D, _>(&self.model, Bench(config))??;
        if self.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{} on {}: train {:.0} images/s (batch {}), inference {:.0} images/s (batch {}), peak RSS {:.2} GiB",
                report.model,
                report.device,
                report.train_images_per_sec,
                report.train_batch,
                report.infer_images_per_sec,
                report.infer_batch,
                report.peak_rss_bytes as f64 / (1u64 << 30) as f64
            );
        }
        Ok(())
    }
}

struct Bench(BenchConfig);

impl<D: SeededDevice> Visitor<D> for Bench {
    type Output = anyhow::Result<BenchReport>;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        // A distilled model's step includes its teacher's forward pass (random weights).
        let teacher = match M::DISTILLATION {
            Some(_) => Some(M::Teacher::build(&D::seeded(1)?)),
            None => None,
        };
        measure::<M, M::Teacher, C, H, W, K, D>(self.0, teacher.as_ref())
    }
}
