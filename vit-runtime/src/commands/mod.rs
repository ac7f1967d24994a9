//! The subcommands. Each owns its arguments; a spec name becomes its compiled model type
//! through the registry generated from `models/` ([`vit_runtime::models::visit`]), so no
//! code here names a model.
use anyhow::Context;
use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::Args;
use std::path::{Path, PathBuf};
use vit_runtime::device::{DeviceChoice, Resolved, SeededDevice};
use vit_runtime::model::{ImageClassifier, Visitor};
use vit_runtime::recipe::Recipe;
use vit_runtime::train::WeightFile;

pub mod attention;
pub mod bench;
pub mod compare;
pub mod data;
pub mod eval;
pub mod flags;
pub mod init;
pub mod models;
pub mod predict;
pub mod sweep;
pub mod train;

/// A command that runs on the device `--device` picks.
pub trait DeviceCommand {
    fn device(&self) -> DeviceChoice;
    fn run<D: SeededDevice>(&self) -> anyhow::Result<()>;
}

/// Runs `command` on the device its `--device` resolves to.
pub fn on_device(command: &impl DeviceCommand) -> anyhow::Result<()> {
    match command.device().resolve()? {
        Resolved::Cpu => command.run::<vit_runtime::dfdx::tensor::Cpu>(),
        #[cfg(feature = "cuda")]
        Resolved::Cuda => command.run::<vit_runtime::dfdx::tensor::Cuda>(),
    }
}

/// Runs `visitor` with the compiled model named `name`.
pub fn with_model<D, V>(name: &str, visitor: V) -> anyhow::Result<V::Output>
where
    D: SeededDevice,
    V: Visitor<D>,
{
    vit_runtime::models::visit::<D, V>(name, visitor).with_context(|| {
        format!(
            "unknown model `{name}`; compiled specs: {}",
            vit_runtime::models::NAMES.join(", ")
        )
    })
}

/// The recipe of the spec named `name`.
pub fn recipe_of<D: SeededDevice>(name: &str) -> anyhow::Result<Recipe> {
    with_model::<D, _>(name, RecipeOf)
}

/// The recipe of the visited model.
struct RecipeOf;

impl<D: SeededDevice> Visitor<D> for RecipeOf {
    type Output = Recipe;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(self) -> Recipe
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        M::RECIPE
    }
}

/// The clap parser of a model argument: one of the compiled specs, listed in `--help`; an
/// unknown name is refused with the closest spec name and the list.
pub fn model_names() -> ModelName {
    ModelName
}

#[derive(Clone, Copy, Debug)]
pub struct ModelName;

impl TypedValueParser for ModelName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let names = vit_runtime::models::NAMES;
        let name = value.to_string_lossy();
        if names.contains(&name.as_ref()) {
            return Ok(name.into_owned());
        }
        let hint = vit_runtime::did_you_mean(&name, names.iter().copied())
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        let message = format!(
            "unknown model `{name}`{hint}; compiled specs: {} (a spec is a file models/<name>.yaml)\n",
            names.join(", ")
        );
        Err(clap::Error::raw(ErrorKind::InvalidValue, message).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            vit_runtime::models::NAMES.iter().map(PossibleValue::new),
        ))
    }
}

/// Options shared by commands that run a model on data.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Where to run: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto` (CUDA if available).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Folder holding `mnist/`, `fashion_mnist/` and relative image-folder roots
    /// (default: $VIT_DATA_DIR, else `data`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N test images (at least 1).
    #[arg(long, value_parser = flags::at_least_one)]
    pub limit_test: Option<usize>,
}

/// A model to evaluate or predict with, and what is known of where it came from.
pub struct Loaded<M> {
    pub model: M,
    /// `weights PATH`, or the checkpoint's path and epoch.
    pub origin: String,
    /// The class names the checkpoint recorded; empty for plain weights.
    pub classes: Vec<String>,
}

/// `--weights PATH [--adapt]` as what [`load_model`] and training take.
pub fn weight_file(weights: &Option<PathBuf>, adapt: bool) -> Option<WeightFile> {
    weights.as_ref().map(|path| WeightFile {
        path: path.clone(),
        adapt,
    })
}

/// `--weights PATH` (plain weights with the model's tensor names), else the checkpoint
/// `--checkpoint PATH`, else `runs/<model>/checkpoint.safetensors`.
pub fn load_model<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    weights: Option<&WeightFile>,
    checkpoint: Option<&Path>,
    dev: &D,
) -> anyhow::Result<Loaded<M>>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    if let Some(weights) = weights {
        return Ok(Loaded {
            model: vit_runtime::train::load_weights_for_eval::<M, C, H, W, K, D>(weights, dev)?,
            origin: format!("weights {}", weights.path.display()),
            classes: Vec::new(),
        });
    }
    let path = checkpoint.map_or_else(|| default_checkpoint(M::NAME), Path::to_path_buf);
    let (model, state) = vit_runtime::train::load_for_eval::<M, C, H, W, K, D>(&path, dev)?;
    Ok(Loaded {
        model,
        origin: format!("{} (epoch {})", path.display(), state.epoch),
        classes: state.classes,
    })
}

/// `runs/<model>/checkpoint.safetensors`: where `train` writes a model's checkpoint by default.
pub fn default_checkpoint(model: &str) -> PathBuf {
    PathBuf::from("runs")
        .join(model)
        .join(vit_runtime::train::CHECKPOINT)
}
