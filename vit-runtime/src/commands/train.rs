//! `train`: a run of a spec's recipe, with the command line's overrides; a distilled model
//! first finds (or trains) its teacher.
use super::{flags, model_names, weight_file, with_model, CommonArgs, DeviceCommand};
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::dfdx::nn::BuildModule;
use vit_runtime::model::{ImageClassifier, ModelSpec, Visitor};
use vit_runtime::train::{self, Existing, RunOptions, RunReport};

#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Spec name: a file `models/<name>.yaml` compiled into this binary (see `models`).
    #[arg(value_parser = model_names())]
    pub model: String,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of epochs, at least 1 (spec: `train.epochs`).
    #[arg(long, value_parser = flags::at_least_one)]
    pub epochs: Option<usize>,
    /// Base learning rate, above 0 (spec: `train.optimizer.lr`).
    #[arg(long, value_parser = flags::learning_rate)]
    pub lr: Option<f64>,
    /// Images per training batch, at least 1 (spec: `train.batch_size`).
    #[arg(long, value_parser = flags::at_least_one)]
    pub batch_size: Option<usize>,
    /// Seed of initialisation, data order, augmentation and dropout (spec: `train.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run directory for the metrics log, checkpoint and plots (default: `runs/<model>`).
    /// A directory that already holds a run is refused unless --resume or --overwrite is
    /// given, and one run at a time writes to a directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the run directory's checkpoint (same seed, same data order and schedule).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace the run in the run directory: its checkpoint, log and plots are removed
    /// once the new run's data have loaded.
    #[arg(long)]
    pub overwrite: bool,
    /// Start from these weights instead of a random init: a safetensors file with the
    /// model's timm tensor names, such as `safetensors.torch.save_file(model.state_dict(),
    /// PATH)` of a model of bench/pytorch/models.py, or a vit-rs checkpoint. With
    /// --resume, a checkpoint in the run directory takes precedence.
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
    /// With --weights: adapt weights made for other sizes as timm does (position
    /// embeddings resampled to this model's patch grid, patch kernels to its patch size and
    /// channel count, a fresh head for another class count); every change is listed.
    #[arg(long, requires = "weights")]
    pub adapt: bool,
    /// Train on the first N training images only (smoke runs; at least 1).
    #[arg(long, value_parser = flags::at_least_one)]
    pub limit_train: Option<usize>,
    /// DeiT: the teacher's weights, a vit-rs checkpoint or a safetensors file with the
    /// teacher's timm tensor names (default: `runs/<teacher>/checkpoint.safetensors`, trained
    /// first if missing and finished first if its run stopped early).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Write a step line to metrics.jsonl every N steps (0: epoch lines only).
    #[arg(long, default_value_t = 50)]
    pub log_every: usize,
    /// No progress bars (per-epoch lines are still printed).
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// What `--resume` / `--overwrite` ask for a run directory that holds a run.
    fn existing(&self) -> Existing {
        match (self.resume, self.overwrite) {
            (true, _) => Existing::Resume,
            (false, true) => Existing::Overwrite,
            (false, false) => Existing::Refuse,
        }
    }
}

impl DeviceCommand for TrainArgs {
    fn device(&self) -> DeviceChoice {
        self.common.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        with_model::<D, _>(&self.model, Train(self))?.map(drop)
    }
}

/// Trains the visited model; its report for callers that compare runs.
pub struct Train<'a>(pub &'a TrainArgs);

impl<D: SeededDevice> Visitor<D> for Train<'_> {
    type Output = anyhow::Result<RunReport>;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        match M::DISTILLATION {
            Some(_) => train_distilled::<M, C, H, W, K, D>(self.0),
            None => train_plain::<M, C, H, W, K, D>(self.0),
        }
    }
}

/// The run directory: `--out`, else `runs/<model>` (created by the run once its data loaded).
fn out_dir(args: &TrainArgs) -> PathBuf {
    args.out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.model))
}

/// The spec's recipe with the command line's overrides.
fn run_options<M: ModelSpec>(args: &TrainArgs, out: PathBuf) -> RunOptions {
    let mut recipe = M::RECIPE;
    recipe.epochs = args.epochs.unwrap_or(recipe.epochs);
    recipe.batch_size = args.batch_size.unwrap_or(recipe.batch_size);
    recipe.seed = args.seed.unwrap_or(recipe.seed);
    recipe.optimizer.lr = args.lr.unwrap_or(recipe.optimizer.lr);
    RunOptions {
        recipe,
        out_dir: out,
        existing: args.existing(),
        init_weights: weight_file(&args.weights, args.adapt),
        data_dir: args.common.data_dir.clone(),
        limit_train: args.limit_train,
        limit_test: args.common.limit_test,
        log_every: args.log_every,
        progress: !args.quiet,
    }
}

fn train_plain<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    args: &TrainArgs,
) -> anyhow::Result<RunReport>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let options = run_options::<M>(args, out_dir(args));
    announce::<M, D>(&options);
    let report = train::train::<M, M, C, H, W, K, D>(&options, None)?;
    finish::<M>(&options, &report)?;
    Ok(report)
}

/// DeiT: find (or first train) the teacher, then train the student against it.
fn train_distilled<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    args: &TrainArgs,
) -> anyhow::Result<RunReport>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let distillation = M::DISTILLATION.context("a distilled model names its teacher")?;
    let teacher_path = match &args.teacher {
        Some(path) => path.clone(),
        None => {
            let dir = PathBuf::from("runs").join(distillation.teacher);
            let path = dir.join(train::CHECKPOINT);
            ensure_teacher_trained::<M::Teacher, C, H, W, K, D>(args, &dir, &path)?;
            path
        }
    };
    let teacher = load_teacher::<M::Teacher, C, H, W, K, D>(&teacher_path)?;
    let trained = match train::checkpoint::read_state(&teacher_path)? {
        Some(state) => format!("epoch {}", state.epoch),
        None => "plain weights".to_string(),
    };
    println!(
        "teacher `{}` from {} ({trained}), alpha {}, {:?} distillation",
        distillation.teacher,
        teacher_path.display(),
        distillation.alpha,
        distillation.loss
    );
    let options = run_options::<M>(args, out_dir(args));
    announce::<M, D>(&options);
    let report = train::train::<M, M::Teacher, C, H, W, K, D>(&options, Some(&teacher))?;
    finish::<M>(&options, &report)?;
    Ok(report)
}

/// Trains the teacher with its own recipe into `dir` unless `path` holds a finished run
/// (or plain weights): from scratch when there is no checkpoint, with `--resume` when its
/// run stopped early, so that a `train deit` killed while its teacher trained loses at
/// most the unfinished epoch and never distils from a half-trained teacher.
fn ensure_teacher_trained<T, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    args: &TrainArgs,
    dir: &Path,
    path: &Path,
) -> anyhow::Result<()>
where
    D: SeededDevice,
    T: ImageClassifier<C, H, W, K, D>,
{
    let epochs = T::RECIPE.epochs;
    let done = if path.exists() {
        train::checkpoint::read_state(path)?.map(|state| state.epoch)
    } else {
        Some(0)
    };
    match done {
        Some(0) => println!(
            "no teacher checkpoint at {}: training teacher `{}` first with its own recipe",
            path.display(),
            T::NAME
        ),
        Some(done) if done < epochs => println!(
            "the run of teacher `{}` in {} stopped after epoch {done} of {epochs}: resuming it first",
            T::NAME,
            dir.display()
        ),
        _ => return Ok(()),
    }
    let teacher_args = TrainArgs {
        model: T::NAME.to_string(),
        out: Some(dir.to_path_buf()),
        epochs: None,
        lr: None,
        batch_size: None,
        resume: true,
        overwrite: false,
        teacher: None,
        weights: None,
        ..args.clone()
    };
    train_plain::<T, C, H, W, K, D>(&teacher_args)?;
    Ok(())
}

/// The teacher's weights from a vit-rs checkpoint or a plain weight file (e.g. a PyTorch
/// `state_dict` with the timm names of bench/pytorch/models.py).
fn load_teacher<T, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    path: &Path,
) -> anyhow::Result<T>
where
    D: SeededDevice,
    T: ImageClassifier<C, H, W, K, D>,
{
    let mut teacher = T::build(&D::seeded(0)?);
    let unused = train::checkpoint::load_weights(path, &mut teacher, T::NAME)
        .with_context(|| format!("cannot use {} as the teacher `{}`", path.display(), T::NAME))?;
    train::warn_unused(path, &unused);
    Ok(teacher)
}

fn announce<M: ModelSpec, D: SeededDevice>(options: &RunOptions) {
    let r = &options.recipe;
    println!(
        "training `{}` ({} params) on {} with {:?} lr {} batch {} for {} epochs, seed {}, device {} -> {}",
        M::NAME,
        M::SUMMARY.params,
        r.dataset.name(),
        r.optimizer.kind,
        r.optimizer.lr,
        r.batch_size,
        r.epochs,
        r.seed,
        D::NAME,
        options.out_dir.display()
    );
}

/// Prints and saves the final model's confusion matrix and draws the run's plots.
fn finish<M: ModelSpec>(options: &RunOptions, report: &RunReport) -> anyhow::Result<()> {
    let table = report.confusion.table(&report.classes);
    std::fs::write(options.out_dir.join("confusion.txt"), &table)?;
    println!("\n{table}");
    let title = format!("{} on {}", M::NAME, M::RECIPE.dataset.name());
    vit_runtime::viz::plot_curves(&options.out_dir.join("curves.png"), &title, &report.epochs)?;
    vit_runtime::viz::plot_confusion(
        &options.out_dir.join("confusion.png"),
        &title,
        &report.confusion,
        &report.classes,
    )?;
    println!(
        "done in {:.1} s; checkpoint {}, metrics {}, plots curves.png and confusion.png",
        report.seconds,
        report.checkpoint.display(),
        options.out_dir.join(train::METRICS).display()
    );
    Ok(())
}
