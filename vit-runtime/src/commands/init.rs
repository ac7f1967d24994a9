//! `init`: a model's initial weights, as `train --seed S` draws them, in a weight file.
use super::{model_names, with_model, DeviceCommand};
use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::dfdx::nn::BuildModule;
use vit_runtime::model::{ImageClassifier, Visitor};
use vit_runtime::train::checkpoint::{self, State};

#[derive(Args, Clone, Debug)]
pub struct InitArgs {
    /// Spec name (see `models`).
    #[arg(value_parser = model_names())]
    model: String,
    /// Seed of the draw (default: the spec's `train.seed`, as `train` uses it).
    #[arg(long)]
    seed: Option<u64>,
    /// Weight file to write (safetensors, timm tensor names); an existing file is refused.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Where to draw: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto`.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceChoice,
}

impl DeviceCommand for InitArgs {
    fn device(&self) -> DeviceChoice {
        self.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        if self.out.exists() {
            bail!(
                "{} already exists: choose another --out (init never replaces a file)",
                self.out.display()
            );
        }
        with_model::<D, _>(&self.model, Init(self))?
    }
}

struct Init<'a>(&'a InitArgs);

impl<D: SeededDevice> Visitor<D> for Init<'_> {
    type Output = anyhow::Result<()>;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        let args = self.0;
        let seed = args.seed.unwrap_or(M::RECIPE.seed);
        let model = M::build(&D::seeded(seed)?);
        let state = State {
            spec: M::NAME.into(),
            epoch: 0,
            step: 0,
            seed,
            classes: Vec::new(),
        };
        checkpoint::save(&args.out, &model, None, &state, M::SPEC_YAML)
            .with_context(|| format!("cannot write the initial weights of `{}`", M::NAME))?;
        println!(
            "initial weights of `{}` (seed {seed}, {} params) -> {}",
            M::NAME,
            M::SUMMARY.params,
            args.out.display()
        );
        Ok(())
    }
}
