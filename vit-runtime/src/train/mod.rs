//! The training loop, generic over every generated model, and evaluation.
//!
//! A run lives in one directory: `spec.yaml`, `metrics.jsonl`, `checkpoint.safetensors`
//! (after every epoch), and the plots and confusion matrix of the final model.
//! Reproducibility: the data order and augmentation of epoch `e` depend only on
//! `(seed, e)`, and each epoch runs on a device seeded from `(seed, e)`, so a run resumed
//! from the checkpoint of epoch `e - 1` redoes epoch `e` exactly as it would have run.

pub mod adapt;
pub mod checkpoint;
mod evaluate;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod run_dir;
pub mod schedule;
mod step;
pub mod sweep;

pub use evaluate::{
    evaluate, load_data, load_for_eval, load_weight_file, load_weights_for_eval, warn_unused,
    Evaluation, WeightFile,
};
pub use run_dir::{Existing, RunDir, CHECKPOINT, METRICS};
pub use step::training_loss;

use crate::data::{Loader, LoaderConfig};
use crate::device::SeededDevice;
use crate::model::ImageClassifier;
use crate::recipe::Recipe;
use anyhow::{bail, Context};
use checkpoint::State;
use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use metrics::{Confusion, MetricsLog, Record, RecordKind};
use optim::Optimizer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Everything a run needs besides the model type: the recipe after command-line overrides.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub recipe: Recipe,
    pub out_dir: PathBuf,
    /// What to do if `out_dir` already holds a run: refuse, resume from its checkpoint
    /// (from scratch if it has none), or replace it.
    pub existing: Existing,
    /// Start from these weights (any safetensors file with the model's tensor names,
    /// see [`checkpoint::load_weights`], or adapted to the model's sizes) instead of the
    /// seed's random init; a checkpoint to resume from takes precedence.
    pub init_weights: Option<WeightFile>,
    pub data_dir: Option<PathBuf>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// Write a `step` record every this many steps.
    pub log_every: usize,
    /// Show progress bars (they hide themselves when stderr is not a terminal).
    pub progress: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub epochs: Vec<Record>,
    /// Class names of the data set, by label.
    pub classes: Vec<String>,
    pub confusion: Confusion,
    pub checkpoint: PathBuf,
    pub seconds: f64,
}

/// Seed of the device that runs epoch `epoch` (1-based) of a run seeded with `seed`.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch as u64)
}

/// Trains `M` as `options` say, distilling from `teacher` when `M` is a distilled model.
///
/// The run directory is claimed first (one writer; an earlier run is refused unless
/// resumed or overwritten), then the data are loaded, and only then is anything written:
/// a bad image folder or normalisation fails with the directory as it was.
pub fn train<M, Teacher, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    options: &RunOptions,
    teacher: Option<&Teacher>,
) -> anyhow::Result<RunReport>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
    Teacher: ImageClassifier<C, H, W, K, D>,
{
    let started = Instant::now();
    let recipe = options.recipe;
    if M::DISTILLATION.is_some() && teacher.is_none() {
        bail!("`{}` distils from a teacher, but none was given", M::NAME);
    }
    let dir = RunDir::claim(&options.out_dir, options.existing)?;
    let data = RunData::load::<C, H, W, K>(options)?;
    if options.existing == Existing::Overwrite {
        dir.clear()?;
    }
    let spec = dir.path().join(run_dir::SPEC);
    std::fs::write(&spec, M::SPEC_YAML)
        .with_context(|| format!("cannot write {}", spec.display()))?;

    let mut progress = start::<M, C, H, W, K, D>(options)?;
    let mut log = MetricsLog::open(&dir.path().join(METRICS), progress.done)?;
    let mut teacher = teacher.cloned();
    let mut confusion = None;
    for epoch in progress.done + 1..=recipe.epochs {
        let dev = D::seeded(epoch_seed(recipe.seed, epoch))?;
        progress.model = progress.model.to_device(&dev);
        teacher = teacher.map(|t| t.to_device(&dev));
        let totals = train_epoch(
            &mut progress,
            teacher.as_ref(),
            &data,
            epoch,
            &dev,
            options,
            &mut log,
        )?;
        let eval = evaluate::<M, C, H, W, K, D>(&progress.model, &data.test, &dev)?;
        finish_epoch::<M, C, H, W, K, D>(&progress, &totals, &eval, &data, options, &mut log)?;
        confusion = Some(eval.confusion);
    }
    let confusion = match confusion {
        Some(c) => c,
        None => {
            let dev = D::seeded(recipe.seed)?;
            evaluate::<M, C, H, W, K, D>(&progress.model, &data.test, &dev)?.confusion
        }
    };
    let epochs = MetricsLog::read(&dir.path().join(METRICS))?
        .into_iter()
        .filter(|r| r.kind == RecordKind::Epoch)
        .collect();
    Ok(RunReport {
        epochs,
        classes: data.classes,
        confusion,
        checkpoint: dir.path().join(CHECKPOINT),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The loaders of a run and its class names.
struct RunData {
    train: Loader,
    test: Loader,
    classes: Vec<String>,
}

impl RunData {
    fn load<const C: usize, const H: usize, const W: usize, const K: usize>(
        options: &RunOptions,
    ) -> anyhow::Result<RunData> {
        let recipe = &options.recipe;
        let splits = load_data::<C, H, W, K>(recipe, options.data_dir.as_deref())?
            .limit(options.limit_train, options.limit_test);
        let test_config = LoaderConfig {
            batch_size: 500,
            ..LoaderConfig::eval(recipe)
        };
        Ok(RunData {
            classes: splits.classes.clone(),
            train: Loader::new(Arc::new(splits.train), LoaderConfig::train(recipe))?,
            test: Loader::new(Arc::new(splits.test), test_config)?,
        })
    }
}

/// The model and optimiser of a run, and how many epochs they have done.
struct Progress<M> {
    model: M,
    optimizer: Optimizer,
    done: usize,
}

/// A fresh model (the seed's init, or `--weights`), or the checkpoint's when resuming.
fn start<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    options: &RunOptions,
) -> anyhow::Result<Progress<M>>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let recipe = &options.recipe;
    let mut model = M::build(&D::seeded(recipe.seed)?);
    let mut optimizer = Optimizer::new(recipe.optimizer);
    let checkpoint_path = options.out_dir.join(CHECKPOINT);
    let resume = options.existing == Existing::Resume;
    if resume && checkpoint_path.exists() {
        let state = checkpoint::load(&checkpoint_path, &mut model, M::NAME, Some(&mut optimizer))?;
        if state.seed != recipe.seed {
            bail!(
                "{} was trained with seed {}, not {}: resume with --seed {} or start a new --out",
                checkpoint_path.display(),
                state.seed,
                recipe.seed,
                state.seed
            );
        }
        println!(
            "resuming `{}` after epoch {} from {}",
            M::NAME,
            state.epoch,
            checkpoint_path.display()
        );
        return Ok(Progress {
            model,
            optimizer,
            done: state.epoch,
        });
    }
    if resume {
        println!(
            "no checkpoint in {}: starting from scratch",
            options.out_dir.display()
        );
    }
    if let Some(weights) = &options.init_weights {
        load_weight_file::<M, C, H, W, K, D>(weights, &mut model)?;
        println!(
            "initial weights of `{}` from {}",
            M::NAME,
            weights.path.display()
        );
    }
    Ok(Progress {
        model,
        optimizer,
        done: 0,
    })
}

/// What the training steps of one epoch add up to.
struct EpochTotals {
    epoch: usize,
    loss_sum: f64,
    correct: usize,
    seen: usize,
    steps: usize,
    /// The learning rate of the epoch's last step.
    lr: f64,
    started: Instant,
    train_seconds: f64,
}

impl EpochTotals {
    fn record(&self, kind: RecordKind, step: u64, seconds: f64) -> Record {
        Record {
            kind,
            epoch: self.epoch,
            step,
            lr: self.lr,
            loss: self.loss_sum / self.steps.max(1) as f64,
            train_acc: self.correct as f64 / self.seen.max(1) as f64,
            test_acc: None,
            test_acc_class_head: None,
            test_acc_dist_head: None,
            images_per_sec: self.seen as f64 / seconds,
            seconds,
        }
    }
}

/// Runs the training steps of epoch `epoch` (1-based), logging every `log_every` steps.
fn train_epoch<M, Teacher, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    progress: &mut Progress<M>,
    teacher: Option<&Teacher>,
    data: &RunData,
    epoch: usize,
    dev: &D,
    options: &RunOptions,
    log: &mut MetricsLog,
) -> anyhow::Result<EpochTotals>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
    Teacher: ImageClassifier<C, H, W, K, D>,
{
    let recipe = &options.recipe;
    let steps_per_epoch = data.train.len();
    let total_steps = steps_per_epoch * recipe.epochs;
    let bar = progress_bar(
        options.progress,
        steps_per_epoch as u64,
        format!("{} {epoch}/{}", M::NAME, recipe.epochs),
    );
    let mut totals = EpochTotals {
        epoch,
        loss_sum: 0.0,
        correct: 0,
        seen: 0,
        steps: 0,
        lr: recipe.optimizer.lr,
        started: Instant::now(),
        train_seconds: 0.0,
    };
    let mut grads = progress.model.alloc_grads();
    for (index, batch) in data.train.epoch(epoch - 1).enumerate() {
        let batch = batch?;
        let step = (epoch - 1) * steps_per_epoch + index;
        totals.lr = schedule::lr_at(
            recipe.schedule,
            recipe.optimizer.lr,
            step,
            steps_per_epoch,
            total_steps,
        );
        let x = batch.images::<D, C, H, W>(dev)?;
        let y = batch.one_hot::<D, K>(dev)?;
        let (loss, predicted) = training_loss(&mut progress.model, teacher, x, y, grads);
        let value = loss.as_vec()[0] as f64;
        if !value.is_finite() {
            bar.abandon();
            let kept = match epoch > 1 {
                true => format!(
                    "The last good checkpoint {} is kept.",
                    options.out_dir.join(CHECKPOINT).display()
                ),
                false => "No checkpoint had been written yet.".to_string(),
            };
            bail!(
                "loss became {value} at epoch {epoch}, step {}: training stopped. {kept}",
                index + 1
            );
        }
        totals.correct += evaluate::count_correct(&predicted, batch.labels());
        totals.seen += batch.len();
        totals.loss_sum += value;
        totals.steps += 1;
        grads = loss.backward();
        progress
            .optimizer
            .update(&mut progress.model, &grads, totals.lr);
        progress.model.zero_grads(&mut grads);
        let elapsed = totals.started.elapsed().as_secs_f64();
        let record = totals.record(RecordKind::Step, progress.optimizer.step, elapsed);
        bar.set_message(format!(
            "loss {:.4} acc {:.2}% {:.0} img/s",
            record.loss,
            100.0 * record.train_acc,
            record.images_per_sec
        ));
        bar.inc(1);
        if options.log_every > 0 && totals.steps.is_multiple_of(options.log_every) {
            log.append(&record)?;
        }
    }
    bar.finish_and_clear();
    totals.train_seconds = totals.started.elapsed().as_secs_f64();
    Ok(totals)
}

/// Saves the epoch's checkpoint, then logs and prints its record: the log never claims
/// an epoch whose checkpoint failed to save.
fn finish_epoch<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    progress: &Progress<M>,
    totals: &EpochTotals,
    eval: &Evaluation,
    data: &RunData,
    options: &RunOptions,
    log: &mut MetricsLog,
) -> anyhow::Result<()>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let mut record = totals.record(
        RecordKind::Epoch,
        progress.optimizer.step,
        totals.train_seconds,
    );
    record.seconds = totals.started.elapsed().as_secs_f64();
    record.test_acc = Some(eval.confusion.accuracy());
    record.test_acc_class_head = eval.class_head;
    record.test_acc_dist_head = eval.dist_head;
    let state = State {
        spec: M::NAME.into(),
        epoch: totals.epoch,
        step: progress.optimizer.step,
        seed: options.recipe.seed,
        classes: data.classes.clone(),
    };
    checkpoint::save(
        &options.out_dir.join(CHECKPOINT),
        &progress.model,
        Some(&progress.optimizer),
        &state,
        M::SPEC_YAML,
    )?;
    log.append(&record)?;
    println!("{}", epoch_line(&record, options.recipe.epochs));
    Ok(())
}

fn progress_bar(enabled: bool, len: u64, prefix: String) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_prefix(prefix);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .expect("template is valid")
            .progress_chars("=> "),
    );
    bar
}

/// `epoch 3/5  loss 0.4123  train 86.10%  test 88.40%  lr 5.0e-3  2310 img/s  21.3 s`.
pub fn epoch_line(r: &Record, epochs: usize) -> String {
    let heads = match (r.test_acc_class_head, r.test_acc_dist_head) {
        (Some(c), Some(d)) => format!(
            " (class head {:.2}%, dist head {:.2}%)",
            100.0 * c,
            100.0 * d
        ),
        _ => String::new(),
    };
    format!(
        "epoch {}/{epochs}  loss {:.4}  train {:.2}%  test {:.2}%{heads}  lr {:.1e}  {:.0} img/s  {:.1} s",
        r.epoch,
        r.loss,
        100.0 * r.train_acc,
        100.0 * r.test_acc.unwrap_or(0.0),
        r.lr,
        r.images_per_sec,
        r.seconds
    )
}
