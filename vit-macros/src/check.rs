//! Validation of a parsed spec into the IR; every derived size is computed here, once.
//!
//! Each error points at the value that has to change, says why, and how to fix it.

mod cnn;
mod rules;
mod train;

pub use rules::{camel_case, is_identifier};

use crate::diagnostic::{Diagnostic, Errors, SourceFile};
use crate::ir::{self, Arch, Input, Model};
use crate::spec::{self, Spec};
use rules::{divisors, greater_than_zero, identifier, list, positive, probability, shape};

/// Where a ViT names the spec it distils from.
pub const TEACHER_PATH: &str = "vit.distillation.teacher";

/// Validates a spec on its own (a teacher it names is checked by [`check_teacher`]), with
/// every independent error it holds.
pub fn check(spec: &Spec) -> Result<Model, Vec<Diagnostic>> {
    let mut errors = Errors::default();
    let geometry = geometry(spec, &mut errors);
    let network = check_network(spec, geometry, &mut errors);
    let train = train::check(spec, geometry, &mut errors);
    let model = network
        .zip(train)
        .map(|(network, train)| network.with(train));
    errors.finish(model, spec.locations.key(""))
}

/// A spec of a `models!` folder must be named after its file: the registry, the teacher
/// lookup and the default run directory all find a spec by its file name.
pub fn name_matches_file(spec: &Spec, name: &str, stem: &str) -> Result<(), Diagnostic> {
    if name == stem {
        return Ok(());
    }
    Err(Diagnostic::new(
        format!("the spec in `{stem}.yaml` is named `{name}`: a spec must be named after its file"),
        spec.locations.value("name"),
    )
    .help(format!(
        "set `name: {stem}`, or rename the file to `{name}.yaml`"
    )))
}

/// Validates `teacher`, the spec `student` names in `distillation.teacher`, as its teacher.
///
/// The teacher's network is checked first and its recipe last, so that a teacher for other
/// images or classes is reported as such rather than as a recipe that does not fit them.
pub fn check_teacher(
    student: &Spec,
    student_model: &Model,
    teacher: &Spec,
    teacher_file: &SourceFile,
) -> Result<Model, Diagnostic> {
    let at = student.locations.value(TEACHER_PATH);
    let name = student
        .vit
        .as_ref()
        .and_then(|v| v.distillation.as_ref())
        .map_or("", |d| d.teacher.as_str());
    let invalid = |d| {
        Diagnostic::new(format!("teacher spec `{name}` is invalid"), at).caused_by(
            "in the teacher spec",
            teacher_file.clone(),
            d,
        )
    };
    // The teacher's own build reports all its errors; here the first stands for them.
    let first_invalid = |all: Vec<Diagnostic>| {
        invalid(
            all.into_iter()
                .next()
                .expect("`Errors::finish` fails with an error"),
        )
    };
    let mut errors = Errors::default();
    let geometry = geometry(teacher, &mut errors);
    let network = check_network(teacher, geometry, &mut errors);
    let network = errors
        .finish(network, teacher.locations.key(""))
        .map_err(first_invalid)?;
    let (theirs, ours) = (network.input, student_model.input);
    let teacher_line = |path: &str| {
        format!(
            "the teacher's `{path}` is on {}:{}",
            teacher_file.display,
            teacher.locations.value(path).line
        )
    };
    if teacher.name != name {
        return Err(Diagnostic::new(
            format!(
                "{} is named `{}`, not `{name}`",
                teacher_file.display, teacher.name
            ),
            at,
        )
        .help(format!(
            "set `name: {name}` in {} so that the teacher's type is `{}`",
            teacher_file.display,
            camel_case(name)
        )));
    }
    if theirs != ours {
        return Err(Diagnostic::new(
            format!(
                "teacher `{name}` takes {} images, but this model takes {}",
                shape(theirs),
                shape(ours)
            ),
            at,
        )
        .help("a teacher must see the same images as its student")
        .note(teacher_line("input")));
    }
    if network.classes != student_model.classes {
        return Err(Diagnostic::new(
            format!(
                "teacher `{name}` predicts {} classes, but this model has {}",
                network.classes, student_model.classes
            ),
            at,
        )
        .help("a teacher must predict the same classes as its student")
        .note(teacher_line("classes")));
    }
    let mut errors = Errors::default();
    let train = train::check(teacher, Some((network.input, network.classes)), &mut errors);
    let train = errors
        .finish(train, teacher.locations.key(""))
        .map_err(first_invalid)?;
    if train.dataset != student_model.train.dataset {
        return Err(Diagnostic::new(
            format!(
                "teacher `{name}` is trained on `{}`, but this model on `{}`",
                train.dataset.name(),
                student_model.train.dataset.name()
            ),
            at,
        )
        .help("distil from a teacher trained on the same data set")
        .note(teacher_line("train.dataset")));
    }
    Ok(network.with(train))
}

/// A model without its recipe: what a teacher must agree with before its recipe matters.
struct Network {
    name: String,
    input: Input,
    classes: usize,
    arch: Arch,
}

impl Network {
    fn with(self, train: ir::Recipe) -> Model {
        Model {
            name: self.name,
            input: self.input,
            classes: self.classes,
            arch: self.arch,
            train,
        }
    }
}

/// The image shape and class count, each checked: what the network and the recipe are
/// checked against. `None` (with its errors recorded) if any of them is invalid.
fn geometry(spec: &Spec, errors: &mut Errors) -> Option<(Input, usize)> {
    let channels = errors.take(positive(spec, "input.channels", spec.input.channels));
    let height = errors.take(positive(spec, "input.height", spec.input.height));
    let width = errors.take(positive(spec, "input.width", spec.input.width));
    let classes = errors.take(positive(spec, "classes", spec.classes));
    Some((
        Input {
            channels: channels?,
            height: height?,
            width: width?,
        },
        classes?,
    ))
}

/// The name and the network; the network is checked only against a valid `geometry`, so
/// that a bad input size is reported once, not again by every layer it reaches.
fn check_network(
    spec: &Spec,
    geometry: Option<(Input, usize)>,
    errors: &mut Errors,
) -> Option<Network> {
    let name = errors.take(identifier(spec, "name", &spec.name));
    let arch = match (&spec.vit, &spec.cnn) {
        (Some(vit), None) => {
            geometry.and_then(|(input, _)| check_vit(spec, vit, input, errors).map(Arch::Vit))
        }
        (None, Some(cnn)) => geometry.and_then(|(input, classes)| {
            errors
                .take(cnn::check(spec, cnn, input, classes))
                .map(Arch::Cnn)
        }),
        (Some(_), Some(_)) => {
            let second = if spec.locations.key("vit").line > spec.locations.key("cnn").line {
                "vit"
            } else {
                "cnn"
            };
            errors.push(
                Diagnostic::new(
                    "a spec has either a `vit:` or a `cnn:` section, not both",
                    spec.locations.key(second),
                )
                .help("put the other network in a spec file of its own"),
            );
            None
        }
        (None, None) => {
            errors.push(
                Diagnostic::new("the spec describes no network", spec.locations.key(""))
                    .help("add a `vit:` or a `cnn:` section"),
            );
            None
        }
    };
    let (input, classes) = geometry?;
    Some(Network {
        name: name?,
        input,
        classes,
        arch: arch?,
    })
}

fn check_vit(spec: &Spec, vit: &spec::Vit, input: Input, errors: &mut Errors) -> Option<ir::Vit> {
    let patch = errors.take(positive(spec, "vit.patch", vit.patch));
    let embed_dim = errors.take(positive(spec, "vit.embed_dim", vit.embed_dim));
    let depth = errors.take(positive(spec, "vit.depth", vit.depth));
    let heads = errors.take(positive(spec, "vit.heads", vit.heads));
    if let Some(patch) = patch {
        errors.take(patch_divides(spec, patch, input));
    }
    if let (Some(embed_dim), Some(heads)) = (embed_dim, heads) {
        errors.take(heads_divide(spec, heads, embed_dim));
    }
    let mlp_hidden = embed_dim.and_then(|dim| errors.take(mlp_hidden(spec, vit, dim)));
    // `None`: no distillation; `Some(None)`: an invalid one.
    let distillation = vit
        .distillation
        .as_ref()
        .map(|d| errors.take(check_distillation(spec, vit, d)));
    let dropout = errors.take(probability(spec, "vit.dropout", vit.dropout));
    let attention_dropout = errors.take(probability(
        spec,
        "vit.attention_dropout",
        vit.attention_dropout,
    ));
    let drop_path = errors.take(probability(spec, "vit.drop_path", vit.drop_path));
    let norm_eps = errors.take(greater_than_zero(spec, "vit.norm_eps", vit.norm_eps));
    let init_std = errors.take(greater_than_zero(spec, "vit.init_std", vit.init_std));
    let (patch, embed_dim, depth, heads) = (patch?, embed_dim?, depth?, heads?);
    let mlp_hidden = mlp_hidden?;
    let distillation = match distillation {
        Some(None) => return None,
        checked => checked.flatten(),
    };
    let extra_tokens =
        usize::from(vit.pooling == spec::Pooling::Cls) + usize::from(distillation.is_some());
    let (grid_h, grid_w) = (input.height / patch, input.width / patch);
    Some(ir::Vit {
        tokenizer: match vit.tokenizer {
            spec::Tokenizer::Patches => ir::Tokenizer::Patches,
            spec::Tokenizer::Conv => ir::Tokenizer::Conv,
        },
        patch,
        grid_h,
        grid_w,
        num_patches: grid_h * grid_w,
        patch_dim: input.channels * patch * patch,
        embed_dim,
        depth,
        heads,
        head_dim: embed_dim / heads,
        qkv: match vit.qkv {
            spec::Qkv::Fused => ir::Qkv::Fused,
            spec::Qkv::PerHead => ir::Qkv::PerHead,
        },
        mlp_hidden,
        activation: match vit.activation {
            spec::Activation::Gelu => ir::Activation::Gelu,
            spec::Activation::Relu => ir::Activation::Relu,
        },
        positions: match vit.positions {
            spec::Positions::Sinusoidal => ir::Positions::Sinusoidal,
            spec::Positions::Learned => ir::Positions::Learned,
        },
        pooling: match vit.pooling {
            spec::Pooling::Cls => ir::Pooling::Cls,
            spec::Pooling::Mean => ir::Pooling::Mean,
        },
        dropout: dropout?,
        attention_dropout: attention_dropout?,
        drop_path: drop_path?,
        final_norm: vit.final_norm,
        norm_eps: norm_eps?,
        init_std: init_std?,
        distillation,
        extra_tokens,
        seq_len: grid_h * grid_w + extra_tokens,
    })
}

/// The patch must tile the image exactly.
fn patch_divides(spec: &Spec, patch: usize, input: Input) -> Result<(), Diagnostic> {
    for (side, size) in [("height", input.height), ("width", input.width)] {
        if !size.is_multiple_of(patch) {
            let common: Vec<usize> = divisors(input.height)
                .into_iter()
                .filter(|&d| input.width.is_multiple_of(d))
                .collect();
            let of = if input.height == input.width {
                format!("the divisors of {size}")
            } else {
                format!(
                    "the common divisors of {} and {}",
                    input.height, input.width
                )
            };
            return Err(Diagnostic::new(
                format!("patch ({patch}) does not divide the image {side} ({size})"),
                spec.locations.value("vit.patch"),
            )
            .help(format!("choose patch from {of}: {}", list(&common))));
        }
    }
    Ok(())
}

/// Every head gets the same share of the embedding.
fn heads_divide(spec: &Spec, heads: usize, embed_dim: usize) -> Result<(), Diagnostic> {
    if embed_dim.is_multiple_of(heads) {
        return Ok(());
    }
    Err(Diagnostic::new(
        format!("heads ({heads}) do not divide embed_dim ({embed_dim})"),
        spec.locations.value("vit.heads"),
    )
    .help(format!(
        "choose heads from the divisors of {embed_dim}: {}",
        list(&divisors(embed_dim))
    )))
}

fn mlp_hidden(spec: &Spec, vit: &spec::Vit, embed_dim: usize) -> Result<usize, Diagnostic> {
    match (vit.mlp_hidden, vit.mlp_ratio) {
        (Some(hidden), None) => positive(spec, "vit.mlp_hidden", hidden),
        (None, Some(ratio)) => {
            let ratio = greater_than_zero(spec, "vit.mlp_ratio", ratio)?;
            let hidden = ratio * embed_dim as f64;
            if (hidden - hidden.round()).abs() > 1e-9 {
                return Err(Diagnostic::new(format!("mlp_ratio ({ratio}) times embed_dim ({embed_dim}) is {hidden}, not a whole number"), spec.locations.value("vit.mlp_ratio"))
                    .help(format!("give the hidden size directly, e.g. `mlp_hidden: {}`", hidden.round().max(1.0))));
            }
            Ok(hidden.round() as usize)
        }
        (Some(_), Some(_)) => Err(Diagnostic::new(
            "`mlp_hidden` and `mlp_ratio` both give the MLP size",
            spec.locations.key("vit.mlp_ratio"),
        )
        .help("keep only one of them (`mlp_hidden = mlp_ratio * embed_dim`)")),
        (None, None) => Err(Diagnostic::new(
            "missing the MLP size in `vit`",
            spec.locations.key("vit"),
        )
        .help("add `mlp_hidden: <size>` or `mlp_ratio: <multiple of embed_dim>`")),
    }
}

fn check_distillation(
    spec: &Spec,
    vit: &spec::Vit,
    d: &spec::Distillation,
) -> Result<ir::Distillation, Diagnostic> {
    if vit.pooling != spec::Pooling::Cls {
        return Err(Diagnostic::new("distillation needs `pooling: cls`", spec.locations.value("vit.pooling"))
            .help("DeiT's distillation token sits next to a class token; use `pooling: cls` or remove `distillation`"));
    }
    let teacher = identifier(spec, TEACHER_PATH, &d.teacher)?;
    if teacher == spec.name {
        return Err(Diagnostic::new(
            format!("`{teacher}` cannot be its own teacher"),
            spec.locations.value(TEACHER_PATH),
        )
        .help("name another spec file in the same directory, e.g. `teacher: cnn`"));
    }
    let alpha = d.alpha;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Diagnostic::new(format!("`alpha` must be between 0 and 1, got {alpha}"), spec.locations.value("vit.distillation.alpha"))
            .help("alpha weighs the distillation loss against the class loss: (1 - alpha) * CE(cls) + alpha * CE(dist)"));
    }
    let loss = match (d.loss, d.tau) {
        (spec::DistillLoss::Hard, None) => ir::DistillLoss::Hard,
        (spec::DistillLoss::Hard, Some(_)) => {
            return Err(Diagnostic::new(
                "`tau` only applies to the soft distillation loss",
                spec.locations.key("vit.distillation.tau"),
            )
            .help("remove `tau`, or use `loss: soft`"));
        }
        (spec::DistillLoss::Soft, tau) => ir::DistillLoss::Soft {
            tau: greater_than_zero(spec, "vit.distillation.tau", tau.unwrap_or(1.0))?,
        },
    };
    Ok(ir::Distillation {
        teacher,
        loss,
        alpha,
    })
}

#[cfg(test)]
mod tests;
