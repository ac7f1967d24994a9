//! The `train:` recipe: the data set must fit the model, the hyper-parameters must make sense.

use super::rules::{greater_than_zero, positive, shape};
use crate::diagnostic::{Diagnostic, Errors};
use crate::ir::{self, Input};
use crate::spec::{self, OptimizerKind, ScheduleKind, Spec};

/// Image shape and class count of the data sets whose files are known at build time (an
/// image folder's are checked when it is loaded).
fn geometry(dataset: &ir::Dataset) -> Option<(Input, usize)> {
    match dataset {
        ir::Dataset::Mnist | ir::Dataset::FashionMnist => Some((
            Input {
                channels: 1,
                height: 28,
                width: 28,
            },
            10,
        )),
        ir::Dataset::ImageFolder(_) => None,
    }
}

/// The recipe, with each independent error recorded. What depends on the image shape and
/// class count (the data set's fit, crop, normalisation) is checked only when `geometry` is
/// valid, so that a bad input size is not reported again here.
pub(super) fn check(
    spec: &Spec,
    geometry: Option<(Input, usize)>,
    errors: &mut Errors,
) -> Option<ir::Recipe> {
    let train = &spec.train;
    let dataset = errors.take(dataset(spec));
    if let (Some(dataset), Some((input, classes))) = (&dataset, geometry) {
        if let Some(known) = self::geometry(dataset) {
            errors.take(fits(spec, dataset, known, input, classes));
        }
    }
    let epochs = errors.take(positive(spec, "train.epochs", train.epochs));
    let batch_size = errors.take(positive(spec, "train.batch_size", train.batch_size));
    let optimizer = errors.take(optimizer(spec, &train.optimizer));
    let schedule = epochs.and_then(|epochs| {
        errors.take(schedule(spec, &train.schedule, epochs, train.optimizer.lr))
    });
    let input = geometry.map(|(input, _)| input);
    let augment = input.and_then(|input| errors.take(augment(spec, &train.augment, input)));
    let mean = input.and_then(|input| {
        errors.take(per_channel(
            spec,
            "train.normalize.mean",
            &train.normalize.mean,
            input,
            finite,
        ))
    });
    let std = input.and_then(|input| {
        errors.take(per_channel(
            spec,
            "train.normalize.std",
            &train.normalize.std,
            input,
            greater_than_zero,
        ))
    });
    Some(ir::Recipe {
        dataset: dataset?,
        epochs: epochs?,
        batch_size: batch_size?,
        seed: train.seed,
        optimizer: optimizer?,
        schedule: schedule?,
        augment: augment?,
        normalize: ir::Normalize {
            mean: leak_f32(mean?),
            std: leak_f32(std?),
        },
    })
}

fn dataset(spec: &Spec) -> Result<ir::Dataset, Diagnostic> {
    Ok(match &spec.train.dataset {
        spec::Dataset::Named(spec::NamedDataset::Mnist) => ir::Dataset::Mnist,
        spec::Dataset::Named(spec::NamedDataset::FashionMnist) => ir::Dataset::FashionMnist,
        spec::Dataset::ImageFolder(folder) => {
            if folder.image_folder.trim().is_empty() {
                return Err(Diagnostic::new(
                    "`train.dataset.image_folder` must name a folder",
                    spec.locations.value("train.dataset.image_folder"),
                )
                .help("the folder holds `train/<class>/*` and `test/<class>/*`"));
            }
            ir::Dataset::ImageFolder(ir::ImageFolder {
                root: leak(folder.image_folder.clone()),
                resize: folder.resize,
            })
        }
    })
}

/// A number for every channel, or a list with one number per channel, each checked.
fn per_channel(
    spec: &Spec,
    path: &str,
    values: &spec::PerChannel,
    input: Input,
    check: fn(&Spec, &str, f64) -> Result<f64, Diagnostic>,
) -> Result<Vec<f64>, Diagnostic> {
    let values = match values {
        spec::PerChannel::All(v) => vec![*v],
        spec::PerChannel::Each(list) => list.clone(),
    };
    if values.len() != 1 && values.len() != input.channels {
        return Err(Diagnostic::new(
            format!(
                "`{path}` has {} values, but the input has {} channel{}",
                values.len(),
                input.channels,
                if input.channels == 1 { "" } else { "s" }
            ),
            spec.locations.value(path),
        )
        .help("give one number for every channel, or a list of one per channel"));
    }
    values.into_iter().map(|v| check(spec, path, v)).collect()
}

/// A data set of known geometry must have the model's image size and class count.
fn fits(
    spec: &Spec,
    dataset: &ir::Dataset,
    (images, labels): (Input, usize),
    input: Input,
    classes: usize,
) -> Result<(), Diagnostic> {
    let at = |path: &str| spec.locations.value(path);
    let name = dataset.name();
    if images != input {
        return Err(Diagnostic::new(
            format!(
                "`{name}` has {} images, but the model's input is {}",
                shape(images),
                shape(input)
            ),
            at("train.dataset"),
        )
        .note(format!("`input` is on line {}", at("input").line))
        .help(format!(
            "set `input: {{ channels: {}, height: {}, width: {} }}`",
            images.channels, images.height, images.width
        )));
    }
    if labels != classes {
        return Err(Diagnostic::new(
            format!("`{name}` has {labels} classes, but the model has {classes}"),
            at("train.dataset"),
        )
        .note(format!("`classes` is on line {}", at("classes").line))
        .help(format!("set `classes: {labels}`")));
    }
    Ok(())
}

fn optimizer(spec: &Spec, o: &spec::Optimizer) -> Result<ir::Optimizer, Diagnostic> {
    let path = |key: &str| format!("train.optimizer.{key}");
    let lr = greater_than_zero(spec, &path("lr"), o.lr)?;
    let kind = match o.kind {
        OptimizerKind::Adam => ir::OptimizerKind::Adam,
        OptimizerKind::AdamW => ir::OptimizerKind::AdamW,
        OptimizerKind::Sgd => ir::OptimizerKind::Sgd,
    };
    if kind == ir::OptimizerKind::Sgd {
        for (key, given) in [("betas", o.betas.is_some()), ("eps", o.eps.is_some())] {
            if given {
                return Err(Diagnostic::new(
                    format!("`{key}` only applies to adam and adamw"),
                    spec.locations.key(&path(key)),
                )
                .help(format!("remove `{key}`, or use `kind: adam`")));
            }
        }
    }
    let weight_decay = o
        .weight_decay
        .unwrap_or(if kind == ir::OptimizerKind::AdamW {
            0.01
        } else {
            0.0
        });
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return Err(Diagnostic::new(
            format!("`weight_decay` must be 0 or more, got {weight_decay}"),
            spec.locations.value(&path("weight_decay")),
        ));
    }
    let [beta1, beta2] = o.betas.unwrap_or([0.9, 0.999]);
    for (i, beta) in [beta1, beta2].into_iter().enumerate() {
        if !(0.0..1.0).contains(&beta) {
            return Err(Diagnostic::new(
                format!("betas must be in [0, 1), got {beta}"),
                spec.locations.value(&format!("{}[{i}]", path("betas"))),
            )
            .help("the usual values are [0.9, 0.999]"));
        }
    }
    let eps = greater_than_zero(spec, &path("eps"), o.eps.unwrap_or(1e-8))?;
    Ok(ir::Optimizer {
        kind,
        lr,
        weight_decay,
        betas: (beta1, beta2),
        eps,
    })
}

fn schedule(
    spec: &Spec,
    s: &spec::Schedule,
    epochs: usize,
    lr: f64,
) -> Result<ir::Schedule, Diagnostic> {
    match s.kind {
        ScheduleKind::Constant => {
            for (key, given) in [
                ("warmup_epochs", s.warmup_epochs.is_some()),
                ("min_lr", s.min_lr.is_some()),
            ] {
                if given {
                    return Err(Diagnostic::new(
                        format!("`{key}` only applies to `kind: warmup_cosine`"),
                        spec.locations.key(&format!("train.schedule.{key}")),
                    )
                    .help(format!("remove `{key}`, or use `kind: warmup_cosine`")));
                }
            }
            Ok(ir::Schedule::Constant)
        }
        ScheduleKind::WarmupCosine => {
            let Some(warmup_epochs) = s.warmup_epochs else {
                return Err(Diagnostic::new(
                    "`kind: warmup_cosine` needs `warmup_epochs`",
                    spec.locations.value("train.schedule.kind"),
                )
                .help("add `warmup_epochs: <n>` (0 for no warm-up)"));
            };
            if warmup_epochs > epochs {
                return Err(Diagnostic::new(format!("warmup_epochs ({warmup_epochs}) is longer than the training (epochs: {epochs})"), spec.locations.value("train.schedule.warmup_epochs"))
                    .help(format!("use at most {epochs} warm-up epochs"))
                    .note(format!("`epochs` is on line {}", spec.locations.value("train.epochs").line)));
            }
            let min_lr = s.min_lr.unwrap_or(0.0);
            if !(min_lr.is_finite() && (0.0..=lr).contains(&min_lr)) {
                return Err(Diagnostic::new(
                    format!(
                        "`min_lr` must be between 0 and the learning rate ({lr}), got {min_lr}"
                    ),
                    spec.locations.value("train.schedule.min_lr"),
                ));
            }
            Ok(ir::Schedule::WarmupCosine {
                warmup_epochs,
                min_lr,
            })
        }
    }
}

fn augment(spec: &Spec, a: &spec::Augment, input: Input) -> Result<ir::Augment, Diagnostic> {
    let random_crop = match a.random_crop {
        None => None,
        Some(crop) => {
            let size = positive(spec, "train.augment.random_crop.size", crop.size)?;
            if size != input.height || size != input.width {
                let mut d = Diagnostic::new(
                    format!(
                        "random crop size ({size}) differs from the {}x{} input",
                        input.height, input.width
                    ),
                    spec.locations.value("train.augment.random_crop.size"),
                );
                d = if input.height == input.width {
                    d.help(format!(
                        "set `size: {}`: the crop must give the model its input size",
                        input.height
                    ))
                } else {
                    d.help("random crops are square; remove `random_crop` for non-square inputs")
                };
                return Err(d);
            }
            Some((size, crop.padding))
        }
    };
    Ok(ir::Augment {
        random_crop,
        horizontal_flip: a.horizontal_flip,
    })
}

fn finite(spec: &Spec, path: &str, value: f64) -> Result<f64, Diagnostic> {
    if !value.is_finite() {
        return Err(Diagnostic::new(
            format!("`{path}` must be a finite number, got {value}"),
            spec.locations.value(path),
        ));
    }
    Ok(value)
}

/// `'static` text for the recipe, which is the runtime's own type and so a `const` of the
/// generated code. The few bytes per spec live as long as the compiler process.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Per-channel values as the runtime's `f32` (see [`leak`]).
fn leak_f32(values: Vec<f64>) -> &'static [f32] {
    Box::leak(values.into_iter().map(|v| v as f32).collect())
}
