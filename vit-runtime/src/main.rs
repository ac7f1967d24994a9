//! `vit-runtime`: train, evaluate and inspect the models of `models/*.yaml`.
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use vit_runtime::device::{DeviceChoice, Resolved};
use vit_runtime::recipe::Dataset;

mod commands;

#[derive(Parser)]
#[command(
    name = "vit-runtime",
    version,
    about = "Train and inspect Vision Transformers compiled from YAML specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model with its spec's recipe (flags override parts of it).
    Train(TrainArgs),
    /// Evaluate a checkpoint (or PyTorch weights) on the test set: accuracy, per-class
    /// accuracy, confusion matrix.
    Eval(EvalArgs),
    /// List every compiled spec with its parameters, tokens, dims and forward FLOPs.
    Models,
    /// Find, verify (SHA-256) and if needed download MNIST and Fashion-MNIST.
    Data(DataArgs),
    /// Measure training and inference throughput and peak memory of a model on random
    /// inputs (compare with PyTorch: `python3 bench/compare.py`).
    Bench(BenchArgs),
    /// Attention maps of a trained ViT over test images: rollout and raw maps side by side
    /// in a PNG grid, the numbers in a safetensors file beside it.
    Attention(commands::attention::AttentionArgs),
    /// Train one run per learning rate / batch size; plot their test accuracy per epoch,
    /// print a table and name the best.
    Sweep(commands::sweep::SweepArgs),
}

/// Options shared by commands that run a model.
#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Where to run: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto` (CUDA if available).
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Folder holding `mnist/` and `fashion_mnist/` (default: $VIT_DATA_DIR, else `data`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use only the first N test images.
    #[arg(long)]
    limit_test: Option<usize>,
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Spec name: a file `models/<name>.yaml` compiled into this binary (see `models`).
    model: String,
    #[command(flatten)]
    common: CommonArgs,
    /// Number of epochs (spec: `train.epochs`).
    #[arg(long)]
    epochs: Option<usize>,
    /// Base learning rate (spec: `train.optimizer.lr`).
    #[arg(long)]
    lr: Option<f64>,
    /// Images per training batch (spec: `train.batch_size`).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of initialisation, data order, augmentation and dropout (spec: `train.seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Run directory for the metrics log, checkpoint and plots (default: `runs/<model>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue from the run directory's checkpoint (same seed, same data order and schedule).
    #[arg(long)]
    resume: bool,
    /// Start from these weights instead of a random init: a safetensors file with the
    /// model's timm tensor names, such as `safetensors.torch.save_file(model.state_dict(),
    /// PATH)` of a model of bench/pytorch/models.py, or a vit-rs checkpoint. With
    /// --resume, a checkpoint in the run directory takes precedence.
    #[arg(long, value_name = "PATH")]
    weights: Option<PathBuf>,
    /// Train on the first N training images only (smoke runs).
    #[arg(long)]
    limit_train: Option<usize>,
    /// DeiT: the teacher's weights, a vit-rs checkpoint or a safetensors file with the
    /// teacher's timm tensor names (default: `runs/<teacher>/checkpoint.safetensors`, trained
    /// first if missing and finished first if its run stopped early).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Write a step line to metrics.jsonl every N steps (0: epoch lines only).
    #[arg(long, default_value_t = 50)]
    log_every: usize,
    /// No progress bars (per-epoch lines are still printed).
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// Spec name (see `models`).
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

#[derive(Args, Clone)]
pub struct DataArgs {
    /// Folder holding `mnist/` and `fashion_mnist/` (default: $VIT_DATA_DIR, else `data`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only this data set (`mnist` or `fashion_mnist`); default both.
    #[arg(long, value_parser = parse_dataset)]
    dataset: Option<Dataset>,
}

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Spec name (see `models`). Run one model per process so peak memory is its own.
    model: String,
    /// Where to run: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto`.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Batch size of the timed training steps (forward, loss, backward, optimiser update).
    #[arg(long, default_value_t = 128)]
    train_batch: usize,
    /// Batch size of the timed inference passes.
    #[arg(long, default_value_t = 1000)]
    infer_batch: usize,
    /// Untimed steps before measuring (allocator and caches warm up).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Print one JSON line instead of a sentence (for `bench/compare.py`).
    #[arg(long)]
    json: bool,
}

fn parse_dataset(name: &str) -> Result<Dataset, String> {
    [Dataset::Mnist, Dataset::FashionMnist]
        .into_iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| format!("unknown data set `{name}`: use `mnist` or `fashion_mnist`"))
}

fn main() -> std::process::ExitCode {
    vit_runtime::memory::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Models => {
            print!("{}", commands::models_table());
            Ok(())
        }
        Command::Data(args) => {
            let datasets = args
                .dataset
                .map(|d| vec![d])
                .unwrap_or(vec![Dataset::Mnist, Dataset::FashionMnist]);
            for dataset in datasets {
                let splits = vit_runtime::data::load(dataset, args.data_dir.as_deref())?;
                print!("{}", splits.report);
            }
            Ok(())
        }
        Command::Train(args) => on_device(args.common.device, |kind| match kind {
            Resolved::Cpu => commands::train::<vit_runtime::dfdx::tensor::Cpu>(&args),
            #[cfg(feature = "cuda")]
            Resolved::Cuda => commands::train::<vit_runtime::dfdx::tensor::Cuda>(&args),
        }),
        Command::Bench(args) => on_device(args.device, |kind| match kind {
            Resolved::Cpu => commands::bench::<vit_runtime::dfdx::tensor::Cpu>(&args),
            #[cfg(feature = "cuda")]
            Resolved::Cuda => commands::bench::<vit_runtime::dfdx::tensor::Cuda>(&args),
        }),
        Command::Eval(args) => on_device(args.common.device, |kind| match kind {
            Resolved::Cpu => commands::eval::<vit_runtime::dfdx::tensor::Cpu>(&args),
            #[cfg(feature = "cuda")]
            Resolved::Cuda => commands::eval::<vit_runtime::dfdx::tensor::Cuda>(&args),
        }),
        Command::Attention(args) => on_device(args.device, |kind| match kind {
            Resolved::Cpu => {
                commands::attention::attention::<vit_runtime::dfdx::tensor::Cpu>(&args)
            }
            #[cfg(feature = "cuda")]
            Resolved::Cuda => {
                commands::attention::attention::<vit_runtime::dfdx::tensor::Cuda>(&args)
            }
        }),
        Command::Sweep(args) => on_device(args.device(), |kind| match kind {
            Resolved::Cpu => commands::sweep::sweep::<vit_runtime::dfdx::tensor::Cpu>(&args),
            #[cfg(feature = "cuda")]
            Resolved::Cuda => commands::sweep::sweep::<vit_runtime::dfdx::tensor::Cuda>(&args),
        }),
    }
}

fn on_device(
    choice: DeviceChoice,
    f: impl FnOnce(Resolved) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let kind = choice.resolve()?;
    f(kind)
}

/// `name` if it is a compiled spec, else an error listing them (with a did-you-mean).
pub fn known_model(name: &str) -> anyhow::Result<&'static str> {
    if let Some(found) = commands::MODELS.iter().find(|m| **m == name) {
        return Ok(found);
    }
    let closest = commands::MODELS
        .iter()
        .min_by_key(|m| strsim::levenshtein(m, name))
        .filter(|m| strsim::levenshtein(m, name) <= 2);
    let hint = closest
        .map(|m| format!(" (did you mean `{m}`?)"))
        .unwrap_or_default();
    bail!(
        "unknown model `{name}`{hint}; compiled specs: {}",
        commands::MODELS.join(", ")
    )
}

/// Ensures a run directory path is usable before long work starts.
pub fn out_dir(args: &TrainArgs) -> anyhow::Result<PathBuf> {
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.model));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    Ok(dir)
}
