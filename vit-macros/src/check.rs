//! Validation of a parsed spec into the IR; every derived size is computed here, once.
//!
//! Each error points at the value that has to change, says why, and how to fix it.

mod cnn;
mod train;

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::ir::{self, Arch, Input, Model};
use crate::spec::{self, Spec};

/// Where a ViT names the spec it distils from.
pub const TEACHER_PATH: &str = "vit.distillation.teacher";

/// Validates a spec on its own (a teacher it names is checked by [`check_teacher`]).
pub fn check(spec: &Spec) -> Result<Model, Diagnostic> {
    let network = check_network(spec)?;
    let train = train::check(spec, network.input, network.classes)?;
    Ok(network.with(train))
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
    let network = check_network(teacher).map_err(invalid)?;
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
    let train = train::check(teacher, network.input, network.classes).map_err(invalid)?;
    if train.dataset != student_model.train.dataset {
        return Err(Diagnostic::new(
            format!(
                "teacher `{name}` is trained on `{}`, but this model on `{}`",
                dataset_name(&train.dataset),
                dataset_name(&student_model.train.dataset)
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
    fn with(self, train: ir::Train) -> Model {
        Model {
            name: self.name,
            input: self.input,
            classes: self.classes,
            arch: self.arch,
            train,
        }
    }
}

fn check_network(spec: &Spec) -> Result<Network, Diagnostic> {
    let name = identifier(spec, "name", &spec.name)?;
    let input = Input {
        channels: positive(spec, "input.channels", spec.input.channels)?,
        height: positive(spec, "input.height", spec.input.height)?,
        width: positive(spec, "input.width", spec.input.width)?,
    };
    let classes = positive(spec, "classes", spec.classes)?;
    let arch = match (&spec.vit, &spec.cnn) {
        (Some(vit), None) => Arch::Vit(check_vit(spec, vit, input)?),
        (None, Some(cnn)) => Arch::Cnn(cnn::check(spec, cnn, input, classes)?),
        (Some(_), Some(_)) => {
            let second = if spec.locations.key("vit").line > spec.locations.key("cnn").line {
                "vit"
            } else {
                "cnn"
            };
            return Err(Diagnostic::new(
                "a spec has either a `vit:` or a `cnn:` section, not both",
                spec.locations.key(second),
            )
            .help("put the other network in a spec file of its own"));
        }
        (None, None) => {
            return Err(
                Diagnostic::new("the spec describes no network", spec.locations.key(""))
                    .help("add a `vit:` or a `cnn:` section"),
            );
        }
    };
    Ok(Network {
        name,
        input,
        classes,
        arch,
    })
}

fn check_vit(spec: &Spec, vit: &spec::Vit, input: Input) -> Result<ir::Vit, Diagnostic> {
    let patch = positive(spec, "vit.patch", vit.patch)?;
    let embed_dim = positive(spec, "vit.embed_dim", vit.embed_dim)?;
    let depth = positive(spec, "vit.depth", vit.depth)?;
    let heads = positive(spec, "vit.heads", vit.heads)?;
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
    if !embed_dim.is_multiple_of(heads) {
        return Err(Diagnostic::new(
            format!("heads ({heads}) do not divide embed_dim ({embed_dim})"),
            spec.locations.value("vit.heads"),
        )
        .help(format!(
            "choose heads from the divisors of {embed_dim}: {}",
            list(&divisors(embed_dim))
        )));
    }
    let mlp_hidden = mlp_hidden(spec, vit, embed_dim)?;
    let distillation = vit
        .distillation
        .as_ref()
        .map(|d| check_distillation(spec, vit, d))
        .transpose()?;
    let extra_tokens =
        usize::from(vit.pooling == spec::Pooling::Cls) + usize::from(distillation.is_some());
    let (grid_h, grid_w) = (input.height / patch, input.width / patch);
    Ok(ir::Vit {
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
        dropout: probability(spec, "vit.dropout", vit.dropout)?,
        attention_dropout: probability(spec, "vit.attention_dropout", vit.attention_dropout)?,
        drop_path: probability(spec, "vit.drop_path", vit.drop_path)?,
        final_norm: vit.final_norm,
        init_std: greater_than_zero(spec, "vit.init_std", vit.init_std)?,
        distillation,
        extra_tokens,
        seq_len: grid_h * grid_w + extra_tokens,
    })
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

/// A size that must be at least 1.
fn positive(spec: &Spec, path: &str, value: usize) -> Result<usize, Diagnostic> {
    if value == 0 {
        return Err(Diagnostic::new(
            format!("`{path}` must be at least 1"),
            spec.locations.value(path),
        ));
    }
    Ok(value)
}

/// A rate that must be finite and above zero (learning rates, standard deviations, ...).
fn greater_than_zero(spec: &Spec, path: &str, value: f64) -> Result<f64, Diagnostic> {
    if !(value.is_finite() && value > 0.0) {
        return Err(Diagnostic::new(
            format!("`{path}` must be greater than 0, got {value}"),
            spec.locations.value(path),
        ));
    }
    Ok(value)
}

/// A drop probability: in [0, 1), as 1 would drop everything.
fn probability(spec: &Spec, path: &str, p: f64) -> Result<f64, Diagnostic> {
    if !(0.0..1.0).contains(&p) {
        return Err(Diagnostic::new(
            format!("`{path}` must be a probability in [0, 1), got {p}"),
            spec.locations.value(path),
        )
        .help("0 disables it; 1 would drop everything"));
    }
    Ok(p)
}

/// A snake_case identifier whose CamelCase names a Rust type.
fn identifier(spec: &Spec, path: &str, name: &str) -> Result<String, Diagnostic> {
    let snake = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && syn::parse_str::<syn::Ident>(&camel_case(name)).is_ok();
    if !snake {
        let mut d = Diagnostic::new(
            format!("`{path}` must be a snake_case identifier, got `{name}`"),
            spec.locations.value(path),
        )
        .note("the generated Rust type is its CamelCase");
        let fixed = snake_case(name);
        if fixed != name && syn::parse_str::<syn::Ident>(&camel_case(&fixed)).is_ok() {
            d = d.help(format!("did you mean `{fixed}`?"));
        }
        return Err(d);
    }
    Ok(name.to_owned())
}

/// `light_vit` -> `LightVit`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            // By chars, not bytes: an invalid name may start with a multi-byte character.
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `LightViT-2` -> `light_vit_2`: a best guess at what was meant. A new word starts at a
/// capital that follows a lowercase letter and is followed by one (so acronyms stay whole).
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let after_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let before_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && after_lower && before_lower {
            out.push('_');
        }
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    out.trim_matches('_').to_owned()
}

fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| n.is_multiple_of(d)).collect()
}

fn list(items: &[usize]) -> String {
    items
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn shape(input: Input) -> String {
    format!("{}x{}x{}", input.channels, input.height, input.width)
}

fn dataset_name(dataset: &ir::Dataset) -> &str {
    match dataset {
        ir::Dataset::Mnist => "mnist",
        ir::Dataset::FashionMnist => "fashion_mnist",
        ir::Dataset::ImageFolder { root, .. } => root,
    }
}

#[cfg(test)]
mod tests;
