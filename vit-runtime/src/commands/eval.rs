//! `eval`: test accuracy, per-class accuracy and confusion matrix of a checkpoint or of
//! plain weights.
use super::{default_checkpoint, model_names, with_model, CommonArgs, DeviceCommand};
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use vit_runtime::data::{Loader, LoaderConfig};
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::model::{ImageClassifier, Visitor};
use vit_runtime::train;

#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// Spec name (see `models`).
    #[arg(value_parser = model_names())]
    model: String,
    /// Checkpoint to evaluate (default: `runs/<model>/checkpoint.safetensors`).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Evaluate these weights instead of a checkpoint: a safetensors file with the model's
    /// timm tensor names, such as `safetensors.torch.save_file(model.state_dict(), PATH)`
    /// of a model of bench/pytorch/models.py (no run state needed).
    #[arg(long, value_name = "PATH", conflicts_with = "checkpoint")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

impl DeviceCommand for EvalArgs {
    fn device(&self) -> DeviceChoice {
        self.common.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        with_model::<D, _>(&self.model, Eval(self))?
    }
}

struct Eval<'a>(&'a EvalArgs);

impl<D: SeededDevice> Visitor<D> for Eval<'_> {
    type Output = anyhow::Result<()>;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        let args = self.0;
        let dev = D::seeded(0)?;
        let (model, origin, trained_on) = match &args.weights {
            Some(path) => (
                train::load_weights_for_eval::<M, C, H, W, K, D>(path, &dev)?,
                format!("weights {}", path.display()),
                Vec::new(),
            ),
            None => {
                let path = args
                    .checkpoint
                    .clone()
                    .unwrap_or_else(|| default_checkpoint(M::NAME));
                let (model, state) = train::load_for_eval::<M, C, H, W, K, D>(&path, &dev)?;
                let origin = format!("{} (epoch {})", path.display(), state.epoch);
                (model, origin, state.classes)
            }
        };
        let recipe = M::RECIPE;
        let splits = train::load_data::<C, H, W, K>(&recipe, args.common.data_dir.as_deref())?
            .limit(None, args.common.limit_test);
        if !trained_on.is_empty() && trained_on != splits.classes {
            bail!(
                "the checkpoint was trained on the classes [{}], but the test set of {} has [{}]",
                trained_on.join(", "),
                recipe.dataset.name(),
                splits.classes.join(", ")
            );
        }
        let config = LoaderConfig {
            batch_size: 500,
            ..LoaderConfig::eval(&recipe)
        };
        let loader = Loader::new(Arc::new(splits.test), config)?;
        let evaluation = train::evaluate::<M, C, H, W, K, D>(&model, &loader, &dev)?;
        println!("`{}` from {origin}:", M::NAME);
        print!("{}", evaluation.confusion.table(&splits.classes));
        if let (Some(c), Some(d)) = (evaluation.class_head, evaluation.dist_head) {
            println!(
                "class head alone {:.2}%, distillation head alone {:.2}%",
                100.0 * c,
                100.0 * d
            );
        }
        Ok(())
    }
}
