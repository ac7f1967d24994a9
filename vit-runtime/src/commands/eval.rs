//! `eval`: test accuracy, per-class accuracy and confusion matrix of a checkpoint or of
//! plain weights; also on the training images, as they are or augmented as a model's recipe
//! augments them.
use super::{
    load_model, model_names, recipe_of, weight_file, with_model, CommonArgs, DeviceCommand,
};
use anyhow::bail;
use clap::{Args, ValueEnum};
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
    /// With --weights: adapt weights made for other sizes as timm does (position
    /// embeddings resampled to this model's patch grid, patch kernels to its patch size and
    /// channel count, a fresh head for another class count); every change is listed.
    #[arg(long, requires = "weights")]
    adapt: bool,
    /// The images to evaluate on: the test split, or the training split (to see, for
    /// instance, how well a teacher labels what its student trains on; `--limit-test`
    /// then counts training images).
    #[arg(long, value_enum, default_value = "test")]
    split: SplitChoice,
    /// Evaluate on augmented views of the images, drawn as MODEL's recipe augments its
    /// training batches (its crops and flips and its seed): how well a teacher labels the
    /// views its student sees, `eval cnn --split train --augment-as deit_long`. The pixels
    /// are still normalised as the evaluated model's recipe says.
    #[arg(long, value_name = "MODEL", value_parser = model_names())]
    augment_as: Option<String>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SplitChoice {
    Test,
    Train,
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
        let loaded = load_model::<M, C, H, W, K, D>(
            weight_file(&args.weights, args.adapt).as_ref(),
            args.checkpoint.as_deref(),
            &dev,
        )?;
        let recipe = M::RECIPE;
        let limit = args.common.limit_test;
        let splits = train::load_data::<C, H, W, K>(&recipe, args.common.data_dir.as_deref())?;
        let splits = match args.split {
            SplitChoice::Test => splits.limit(None, limit),
            SplitChoice::Train => splits.limit(limit, None),
        };
        if !loaded.classes.is_empty() && loaded.classes != splits.classes {
            bail!(
                "the checkpoint was trained on the classes [{}], but the test set of {} has [{}]",
                loaded.classes.join(", "),
                recipe.dataset.name(),
                splits.classes.join(", ")
            );
        }
        let mut config = LoaderConfig {
            batch_size: 500,
            ..LoaderConfig::eval(&recipe)
        };
        let (split, mut images) = match args.split {
            SplitChoice::Test => (splits.test, "the test split".to_string()),
            SplitChoice::Train => (splits.train, "the training split".to_string()),
        };
        if let Some(other) = &args.augment_as {
            let augmenting = recipe_of::<D>(other)?;
            config.augment = augmenting.augment;
            config.seed = augmenting.seed;
            images += &format!(", augmented as `{other}` augments its training batches");
        }
        let loader = Loader::new(Arc::new(split), config)?;
        let evaluation = train::evaluate::<M, C, H, W, K, D>(&loaded.model, &loader, &dev)?;
        println!("`{}` from {}, on {images}:", M::NAME, loaded.origin);
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
