//! The subcommands, dispatched from a spec name to its compiled model type.
use crate::{known_model, out_dir, BenchArgs, EvalArgs, TrainArgs};
use anyhow::Context;
use std::path::{Path, PathBuf};
use vit_runtime::device::SeededDevice;
use vit_runtime::model::{ImageClassifier, ModelSpec, Summary};
use vit_runtime::models::{Cnn, Deit, Lightvit, Vit};
use vit_runtime::train::{self, RunOptions, RunReport};

/// `$run::<Model, D>($args)` for the compiled model named `$name` (an error for an unknown
/// name): the dispatch of every subcommand that treats all models alike.
macro_rules! run_model {
    ($name:expr, $run:ident, $D:ty, $args:expr) => {
        match $crate::known_model($name)? {
            "lightvit" => $run::<vit_runtime::models::Lightvit<f32, $D>, $D>($args),
            "vit" => $run::<vit_runtime::models::Vit<f32, $D>, $D>($args),
            "deit" => $run::<vit_runtime::models::Deit<f32, $D>, $D>($args),
            "cnn" => $run::<vit_runtime::models::Cnn<f32, $D>, $D>($args),
            other => unreachable!("`{other}` is in MODELS but not dispatched"),
        }
    };
}

pub mod attention;
pub mod sweep;

/// Every spec compiled into this binary (one `model!` in `vit_runtime::models` each).
pub const MODELS: [&str; 4] = ["lightvit", "vit", "deit", "cnn"];

/// All models take 28x28 grey images and predict 10 classes.
const C: usize = 1;
const H: usize = 28;
const W: usize = 28;
const K: usize = 10;

fn summaries() -> [(&'static str, Summary, &'static str); 4] {
    type Cpu = vit_runtime::dfdx::tensor::Cpu;
    [
        (
            Lightvit::<f32, Cpu>::NAME,
            Lightvit::<f32, Cpu>::SUMMARY,
            Lightvit::<f32, Cpu>::RECIPE.dataset.name(),
        ),
        (
            Vit::<f32, Cpu>::NAME,
            Vit::<f32, Cpu>::SUMMARY,
            Vit::<f32, Cpu>::RECIPE.dataset.name(),
        ),
        (
            Deit::<f32, Cpu>::NAME,
            Deit::<f32, Cpu>::SUMMARY,
            Deit::<f32, Cpu>::RECIPE.dataset.name(),
        ),
        (
            Cnn::<f32, Cpu>::NAME,
            Cnn::<f32, Cpu>::SUMMARY,
            Cnn::<f32, Cpu>::RECIPE.dataset.name(),
        ),
    ]
}

/// The `models` table.
pub fn models_table() -> String {
    let mut out = format!(
        "{:<10} {:<4} {:>10} {:>7} {:>6} {:>6} {:>6} {:>9} {:>5} {:>12}  {}\n",
        "model",
        "kind",
        "params",
        "tokens",
        "dim",
        "depth",
        "heads",
        "head_dim",
        "mlp",
        "MFLOPs/img",
        "dataset"
    );
    for (name, s, dataset) in summaries() {
        let dash = |v: usize| {
            if s.kind == "cnn" {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        out += &format!(
            "{:<10} {:<4} {:>10} {:>7} {:>6} {:>6} {:>6} {:>9} {:>5} {:>12.2}  {}\n",
            name,
            s.kind,
            s.params,
            dash(s.tokens),
            dash(s.embed_dim),
            dash(s.depth),
            dash(s.heads),
            dash(s.head_dim),
            dash(s.mlp_hidden),
            s.flops as f64 / 1e6,
            dataset
        );
    }
    out
}

pub fn train<D: SeededDevice>(args: &TrainArgs) -> anyhow::Result<()> {
    match known_model(&args.model)? {
        "lightvit" => train_plain::<Lightvit<f32, D>, D>(args).map(drop),
        "vit" => train_plain::<Vit<f32, D>, D>(args).map(drop),
        "cnn" => train_plain::<Cnn<f32, D>, D>(args).map(drop),
        "deit" => train_distilled::<Deit<f32, D>, Cnn<f32, D>, D>(args),
        other => unreachable!("`{other}` is in MODELS but not dispatched"),
    }
}

pub fn eval<D: SeededDevice>(args: &EvalArgs) -> anyhow::Result<()> {
    run_model!(&args.model, eval_model, D, args)
}

pub fn bench<D: SeededDevice>(args: &BenchArgs) -> anyhow::Result<()> {
    use vit_runtime::bench::{measure, BenchConfig};
    let config = BenchConfig {
        train_batch: args.train_batch,
        infer_batch: args.infer_batch,
        warmup: args.warmup,
        steps: args.steps,
    };
    if config.train_batch == 0 || config.infer_batch == 0 || config.steps == 0 {
        anyhow::bail!("--train-batch, --infer-batch and --steps must be at least 1");
    }
    let report = match known_model(&args.model)? {
        "lightvit" => measure::<Lightvit<f32, D>, Cnn<f32, D>, C, H, W, K, D>(config, None),
        "vit" => measure::<Vit<f32, D>, Cnn<f32, D>, C, H, W, K, D>(config, None),
        "cnn" => measure::<Cnn<f32, D>, Cnn<f32, D>, C, H, W, K, D>(config, None),
        "deit" => {
            let teacher =
                <Cnn<f32, D> as vit_runtime::dfdx::nn::BuildModule<D, f32>>::build(&D::seeded(1)?);
            measure::<Deit<f32, D>, Cnn<f32, D>, C, H, W, K, D>(config, Some(&teacher))
        }
        other => unreachable!("`{other}` is in MODELS but not dispatched"),
    }?;
    if args.json {
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
        resume: args.resume,
        init_weights: args.weights.clone(),
        data_dir: args.common.data_dir.clone(),
        limit_train: args.limit_train,
        limit_test: args.common.limit_test,
        log_every: args.log_every,
        progress: !args.quiet,
    }
}

fn train_plain<M: ImageClassifier<C, H, W, K, D>, D: SeededDevice>(
    args: &TrainArgs,
) -> anyhow::Result<RunReport> {
    let options = run_options::<M>(args, out_dir(args)?);
    announce::<M, D>(&options);
    let report = train::train::<M, M, C, H, W, K, D>(&options, None)?;
    finish::<M>(&options, &report)?;
    Ok(report)
}

/// DeiT: find (or first train) the teacher, then train the student against it.
fn train_distilled<M, Teacher, D>(args: &TrainArgs) -> anyhow::Result<()>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
    Teacher: ImageClassifier<C, H, W, K, D>,
{
    let distillation = M::DISTILLATION.context("a distilled model names its teacher")?;
    let teacher_path = match &args.teacher {
        Some(path) => path.clone(),
        None => {
            let dir = PathBuf::from("runs").join(distillation.teacher);
            let path = dir.join(train::CHECKPOINT);
            ensure_teacher_trained::<Teacher, D>(args, &dir, &path)?;
            path
        }
    };
    let teacher = load_teacher::<Teacher, D>(&teacher_path)?;
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
    let options = run_options::<M>(args, out_dir(args)?);
    announce::<M, D>(&options);
    let report = train::train::<M, Teacher, C, H, W, K, D>(&options, Some(&teacher))?;
    finish::<M>(&options, &report)
}

/// Trains the teacher with its own recipe into `dir` unless `path` holds a finished run
/// (or plain weights): from scratch when there is no checkpoint, with `--resume` when its
/// run stopped early, so that a `train deit` killed while its teacher trained loses at
/// most the unfinished epoch and never distils from a half-trained teacher.
fn ensure_teacher_trained<Teacher: ImageClassifier<C, H, W, K, D>, D: SeededDevice>(
    args: &TrainArgs,
    dir: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    let epochs = Teacher::RECIPE.epochs;
    let done = if path.exists() {
        train::checkpoint::read_state(path)?.map(|state| state.epoch)
    } else {
        Some(0)
    };
    match done {
        Some(0) => println!(
            "no teacher checkpoint at {}: training teacher `{}` first with its own recipe",
            path.display(),
            Teacher::NAME
        ),
        Some(done) if done < epochs => println!(
            "the run of teacher `{}` in {} stopped after epoch {done} of {epochs}: resuming it first",
            Teacher::NAME,
            dir.display()
        ),
        _ => return Ok(()),
    }
    let teacher_args = TrainArgs {
        model: Teacher::NAME.to_string(),
        out: Some(dir.to_path_buf()),
        epochs: None,
        lr: None,
        batch_size: None,
        resume: true,
        teacher: None,
        weights: None,
        ..args.clone()
    };
    train_plain::<Teacher, D>(&teacher_args)?;
    Ok(())
}

/// The teacher's weights from a vit-rs checkpoint or a plain weight file (e.g. a PyTorch
/// `state_dict` with the timm names of bench/pytorch/models.py).
fn load_teacher<Teacher: ImageClassifier<C, H, W, K, D>, D: SeededDevice>(
    path: &Path,
) -> anyhow::Result<Teacher> {
    train::load_weights_for_eval::<Teacher, C, H, W, K, D>(path, &D::seeded(0)?).with_context(
        || {
            format!(
                "cannot use {} as the teacher `{}`",
                path.display(),
                Teacher::NAME
            )
        },
    )
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

/// Prints and saves the final model's confusion matrix.
fn finish<M: ModelSpec>(options: &RunOptions, report: &RunReport) -> anyhow::Result<()> {
    let names = M::RECIPE.dataset.class_names();
    let table = report.confusion.table(&names);
    std::fs::write(options.out_dir.join("confusion.txt"), &table)?;
    println!("\n{table}");
    let title = format!("{} on {}", M::NAME, M::RECIPE.dataset.name());
    vit_runtime::viz::plot_curves(&options.out_dir.join("curves.png"), &title, &report.epochs)?;
    vit_runtime::viz::plot_confusion(
        &options.out_dir.join("confusion.png"),
        &title,
        &report.confusion,
        &names,
    )?;
    println!(
        "done in {:.1} s; checkpoint {}, metrics {}, plots curves.png and confusion.png",
        report.seconds,
        report.checkpoint.display(),
        options.out_dir.join(train::METRICS).display()
    );
    Ok(())
}

fn eval_model<M: ImageClassifier<C, H, W, K, D>, D: SeededDevice>(
    args: &EvalArgs,
) -> anyhow::Result<()> {
    let dev = D::seeded(0)?;
    let (model, origin) = match &args.weights {
        Some(path) => (
            train::load_weights_for_eval::<M, C, H, W, K, D>(path, &dev)?,
            format!("weights {}", path.display()),
        ),
        None => {
            let path = args
                .checkpoint
                .clone()
                .unwrap_or_else(|| PathBuf::from("runs").join(M::NAME).join(train::CHECKPOINT));
            let (model, state) = train::load_for_eval::<M, C, H, W, K, D>(&path, &dev)?;
            (model, format!("{} (epoch {})", path.display(), state.epoch))
        }
    };
    let recipe = M::RECIPE;
    let splits = vit_runtime::data::load(recipe.dataset, args.common.data_dir.as_deref())?
        .limit(None, args.common.limit_test);
    let config = vit_runtime::data::LoaderConfig {
        batch_size: 500,
        ..vit_runtime::data::LoaderConfig::eval(&recipe)
    };
    let loader = vit_runtime::data::Loader::new(std::sync::Arc::new(splits.test), config)?;
    let evaluation = train::evaluate::<M, C, H, W, K, D>(&model, &loader, &dev)?;
    println!("`{}` from {origin}:", M::NAME);
    print!(
        "{}",
        evaluation.confusion.table(&recipe.dataset.class_names())
    );
    if let (Some(c), Some(d)) = (evaluation.class_head, evaluation.dist_head) {
        println!(
            "class head alone {:.2}%, distillation head alone {:.2}%",
            100.0 * c,
            100.0 * d
        );
    }
    Ok(())
}
