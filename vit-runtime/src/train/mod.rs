//! The training loop, generic over every generated model, and evaluation.
//!
//! A run lives in one directory: `spec.yaml`, `metrics.jsonl`, `checkpoint.safetensors`
//! (after every epoch), and the plots and confusion matrix of the final model.
//! Reproducibility: the data order and augmentation of epoch `e` depend only on
//! `(seed, e)`, and each epoch runs on a device seeded from `(seed, e)`, so a run resumed
//! from the checkpoint of epoch `e - 1` redoes epoch `e` exactly as it would have run.

pub mod checkpoint;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod sweep;

use crate::data::{self, Loader, LoaderConfig};
use crate::device::SeededDevice;
use crate::model::{Heads, ImageClassifier};
use crate::nn::Mode;
use crate::recipe::Recipe;
use anyhow::{bail, Context};
use checkpoint::State;
use dfdx::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use metrics::{Confusion, MetricsLog, Record};
use optim::Optimizer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Everything a run needs besides the model type: the recipe after command-line overrides.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub recipe: Recipe,
    pub out_dir: PathBuf,
    /// Continue from `out_dir/checkpoint.safetensors` if it exists.
    pub resume: bool,
    /// Start from these weights (any safetensors file with the model's tensor names,
    /// see [`checkpoint::load_weights`]) instead of the seed's random init; a checkpoint
    /// to resume from takes precedence.
    pub init_weights: Option<PathBuf>,
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

pub const CHECKPOINT: &str = "checkpoint.safetensors";
pub const METRICS: &str = "metrics.jsonl";

/// Seed of the device that runs epoch `epoch` (1-based) of a run seeded with `seed`.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch as u64)
}

/// Trains `M` as `options` say, distilling from `teacher` when `M` is a distilled model.
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
    // The data first: a bad image folder or normalisation fails before the run writes
    // anything.
    let splits = load_data::<C, H, W, K>(&recipe, options.data_dir.as_deref())?
        .limit(options.limit_train, options.limit_test);
    let classes = splits.classes.clone();
    let train_config = LoaderConfig::train(&recipe);
    let test_config = LoaderConfig {
        batch_size: 500,
        ..LoaderConfig::eval(&recipe)
    };
    let train_loader = Loader::new(Arc::new(splits.train), train_config)?;
    let test_loader = Loader::new(Arc::new(splits.test), test_config)?;
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create run directory {}", options.out_dir.display()))?;
    std::fs::write(options.out_dir.join("spec.yaml"), M::SPEC_YAML)?;

    let mut model = M::build(&D::seeded(recipe.seed)?);
    let mut optimizer = Optimizer::new(recipe.optimizer);
    let checkpoint_path = options.out_dir.join(CHECKPOINT);
    let mut done = 0;
    if options.resume && checkpoint_path.exists() {
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
        done = state.epoch;
        println!(
            "resuming `{}` after epoch {done} from {}",
            M::NAME,
            checkpoint_path.display()
        );
    } else {
        if options.resume {
            println!(
                "no checkpoint in {}: starting from scratch",
                options.out_dir.display()
            );
        }
        if let Some(path) = &options.init_weights {
            let unused = checkpoint::load_weights(path, &mut model, M::NAME)?;
            println!("initial weights of `{}` from {}", M::NAME, path.display());
            warn_unused(path, &unused);
        }
    }
    let mut log = MetricsLog::open(&options.out_dir.join(METRICS), done)?;

    let steps_per_epoch = train_loader.len();
    let total_steps = steps_per_epoch * recipe.epochs;
    let mut teacher = teacher.cloned();
    let mut confusion = None;
    for epoch in done + 1..=recipe.epochs {
        let dev = D::seeded(epoch_seed(recipe.seed, epoch))?;
        model = model.to_device(&dev);
        teacher = teacher.map(|t| t.to_device(&dev));
        let epoch_started = Instant::now();
        let bar = progress_bar(
            options.progress,
            steps_per_epoch as u64,
            format!("{} {epoch}/{}", M::NAME, recipe.epochs),
        );
        let mut grads = model.alloc_grads();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = recipe.optimizer.lr;
        for (index, batch) in train_loader.epoch(epoch - 1).enumerate() {
            let batch = batch?;
            let step = (epoch - 1) * steps_per_epoch + index;
            lr = schedule::lr_at(
                recipe.schedule,
                recipe.optimizer.lr,
                step,
                steps_per_epoch,
                total_steps,
            );
            let x = batch.images::<D, C, H, W>(&dev)?;
            let y = batch.one_hot::<D, K>(&dev)?;
            let (loss, predicted) = training_loss(&model, teacher.as_ref(), x, y, grads);
            correct += count_correct(&predicted, batch.labels());
            seen += batch.len();
            let value = loss.as_vec()[0] as f64;
            if !value.is_finite() {
                bar.abandon();
                bail!(
                    "loss became {value} at epoch {epoch}, step {}: training stopped. {}",
                    index + 1,
                    if done > 0 || epoch > 1 {
                        format!(
                            "The last good checkpoint {} is kept.",
                            checkpoint_path.display()
                        )
                    } else {
                        "No checkpoint had been written yet.".to_string()
                    }
                );
            }
            loss_sum += value;
            grads = loss.backward();
            optimizer.update(&mut model, &grads, lr);
            model.zero_grads(&mut grads);
            let elapsed = epoch_started.elapsed().as_secs_f64();
            let record = Record {
                kind: "step".into(),
                epoch,
                step: optimizer.step,
                lr,
                loss: loss_sum / (index + 1) as f64,
                train_acc: correct as f64 / seen as f64,
                test_acc: None,
                test_acc_class_head: None,
                test_acc_dist_head: None,
                images_per_sec: seen as f64 / elapsed,
                seconds: elapsed,
            };
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                record.loss,
                100.0 * record.train_acc,
                record.images_per_sec
            ));
            bar.inc(1);
            if options.log_every > 0 && (index + 1) % options.log_every == 0 {
                log.append(&record)?;
            }
        }
        bar.finish_and_clear();
        let train_seconds = epoch_started.elapsed().as_secs_f64();
        let eval = evaluate::<M, C, H, W, K, D>(&model, &test_loader, &dev)?;
        let record = Record {
            kind: "epoch".into(),
            epoch,
            step: optimizer.step,
            lr,
            loss: loss_sum / steps_per_epoch.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            test_acc: Some(eval.confusion.accuracy()),
            test_acc_class_head: eval.class_head,
            test_acc_dist_head: eval.dist_head,
            images_per_sec: seen as f64 / train_seconds,
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        log.append(&record)?;
        let state = State {
            spec: M::NAME.into(),
            epoch,
            step: optimizer.step,
            seed: recipe.seed,
            classes: classes.clone(),
        };
        checkpoint::save(
            &checkpoint_path,
            &model,
            Some(&optimizer),
            &state,
            M::SPEC_YAML,
        )?;
        println!("{}", epoch_line(&record, recipe.epochs));
        confusion = Some(eval.confusion);
    }
    let confusion = match confusion {
        Some(c) => c,
        None => {
            evaluate::<M, C, H, W, K, D>(&model, &test_loader, &D::seeded(recipe.seed)?)?.confusion
        }
    };
    let epochs = MetricsLog::read(&options.out_dir.join(METRICS))?
        .into_iter()
        .filter(|r| r.kind == "epoch")
        .collect();
    Ok(RunReport {
        epochs,
        classes,
        confusion,
        checkpoint: checkpoint_path,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The train and test splits of the recipe's data set, as a `C x H x W`, `K`-class model
/// takes them.
pub fn load_data<const C: usize, const H: usize, const W: usize, const K: usize>(
    recipe: &Recipe,
    data_dir: Option<&Path>,
) -> Result<data::Splits, data::DataError> {
    let shape = data::ImageShape {
        channels: C,
        height: H,
        width: W,
    };
    data::load(recipe.dataset, data_dir, shape, K)
}

/// The forward half of a training step: the loss to minimise and the predicted classes.
///
/// The teacher sees the same (augmented) batch in evaluation mode, through an untracked
/// copy of `x`: its logits are constants of the loss, so no gradient can reach it.
pub fn training_loss<
    M,
    Teacher,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    D,
>(
    model: &M,
    teacher: Option<&Teacher>,
    x: Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D>,
    labels: Tensor<(usize, Const<K>), f32, D>,
    grads: Gradients<f32, D>,
) -> (Tensor<Rank0, f32, D, OwnedTape<f32, D>>, Vec<usize>)
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
    Teacher: ImageClassifier<C, H, W, K, D>,
{
    let teacher_logits = teacher.map(|t| t.predict(x.clone()));
    let heads = model.heads(x.traced(grads), Mode::Train);
    let predicted = predictions(&heads);
    let loss = objective::<M, C, H, W, K, D>(heads, labels, teacher_logits.as_ref());
    (loss, predicted)
}

/// The loss to minimise: cross-entropy, or DeiT's distillation objective.
fn objective<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    heads: Heads<usize, K, D, OwnedTape<f32, D>>,
    labels: Tensor<(usize, Const<K>), f32, D>,
    teacher: Option<&Tensor<(usize, Const<K>), f32, D>>,
) -> Tensor<Rank0, f32, D, OwnedTape<f32, D>>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    match (heads.distill, M::DISTILLATION, teacher) {
        (Some(dist), Some(d), Some(teacher)) => {
            loss::distillation(heads.class, dist, labels, teacher, d.loss, d.alpha)
        }
        // A second head without a teacher learns the labels too.
        (Some(dist), _, _) => {
            (loss::cross_entropy(heads.class, labels.clone()) + loss::cross_entropy(dist, labels))
                * 0.5
        }
        (None, _, _) => loss::cross_entropy(heads.class, labels),
    }
}

/// Predicted classes of a forward pass (DeiT: of its averaged heads).
fn predictions<const K: usize, D: Device<f32>, T: Tape<f32, D>>(
    heads: &Heads<usize, K, D, T>,
) -> Vec<usize> {
    let mut logits = heads.class.retaped::<NoneTape>().as_vec();
    if let Some(dist) = &heads.distill {
        for (a, b) in logits.iter_mut().zip(dist.retaped::<NoneTape>().as_vec()) {
            *a = (*a + b) / 2.0;
        }
    }
    logits.chunks(K).map(loss::argmax).collect()
}

fn count_correct(predicted: &[usize], labels: &[u8]) -> usize {
    predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count()
}

/// Test-set results of a model.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Of the inference prediction (DeiT: averaged heads).
    pub confusion: Confusion,
    /// DeiT only: accuracy of each head alone.
    pub class_head: Option<f64>,
    pub dist_head: Option<f64>,
}

/// Accuracy and confusion matrix of `model` on every batch of `loader`, in evaluation mode.
pub fn evaluate<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    model: &M,
    loader: &Loader,
    dev: &D,
) -> anyhow::Result<Evaluation>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let mut confusion = Confusion::new(K);
    let (mut class_correct, mut dist_correct) = (0usize, 0usize);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let heads = model.eval_heads(batch.images::<D, C, H, W>(dev)?);
        for (p, &l) in predictions(&heads).iter().zip(batch.labels()) {
            confusion.add(usize::from(l), *p);
        }
        if let Some(dist) = &heads.distill {
            let single = |t: &Tensor<(usize, Const<K>), f32, D>| {
                t.as_vec().chunks(K).map(loss::argmax).collect::<Vec<_>>()
            };
            class_correct += count_correct(&single(&heads.class), batch.labels());
            dist_correct += count_correct(&single(dist), batch.labels());
        }
    }
    let distilled = M::DISTILLATION.is_some();
    let total = confusion.total().max(1) as f64;
    Ok(Evaluation {
        confusion,
        class_head: distilled.then(|| class_correct as f64 / total),
        dist_head: distilled.then(|| dist_correct as f64 / total),
    })
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

/// Says which tensors of a weight file a model did not use (a sign of a naming mismatch).
pub fn warn_unused(path: &Path, unused: &[String]) {
    if !unused.is_empty() {
        eprintln!(
            "warning: {} tensor(s) of {} are not part of the model: {}",
            unused.len(),
            path.display(),
            unused.join(", ")
        );
    }
}

/// Loads a checkpoint for evaluation, checking it belongs to `M`.
pub fn load_for_eval<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    path: &Path,
    dev: &D,
) -> anyhow::Result<(M, State)>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let mut model = M::build(dev);
    let state = checkpoint::load(path, &mut model, M::NAME, None)?;
    Ok((model, state))
}

/// Builds `M` with the weights of any safetensors file that names them as `M` does (a
/// PyTorch `state_dict`, a vit-rs checkpoint), for evaluation.
pub fn load_weights_for_eval<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    path: &Path,
    dev: &D,
) -> anyhow::Result<M>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let mut model = M::build(dev);
    let unused = checkpoint::load_weights(path, &mut model, M::NAME)?;
    warn_unused(path, &unused);
    Ok(model)
}
