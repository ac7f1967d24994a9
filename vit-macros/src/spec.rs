//! The serde model of a spec file, as written: defaults filled in, nothing derived or checked.
//!
//! [`parse`] reads the YAML and records where every key and value is ([`Locations`]), so that
//! `check` can point its errors at the offending value.

mod errors;
mod locations;

pub use locations::Locations;

use crate::diagnostic::Diagnostic;
use serde::Deserialize;

/// Parses a spec; syntax, type, unknown-key and missing-key errors are located in `text`.
pub fn parse(text: &str) -> Result<Spec, Diagnostic> {
    let locations = Locations::build(text);
    match serde_yaml::from_str::<Spec>(text) {
        Err(e) => Err(errors::translate(&e, text, locations.as_ref().ok())),
        Ok(mut spec) => {
            spec.locations = locations?;
            Ok(spec)
        }
    }
}

/// A whole spec file.
///
/// `name` is a snake_case identifier; the generated type is its CamelCase. Exactly one of
/// `vit` and `cnn` describes the network.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    pub input: Input,
    pub classes: usize,
    #[serde(default)]
    pub vit: Option<Vit>,
    #[serde(default)]
    pub cnn: Option<Cnn>,
    pub train: Train,
    #[serde(skip)]
    pub locations: Locations,
}

/// `input: { channels, height, width }`: the image shape, all required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// `vit:`. Required: `tokenizer`, `patch`, `embed_dim`, `depth`, `heads`, `positions`, and
/// exactly one of `mlp_hidden` / `mlp_ratio` (`mlp_hidden = mlp_ratio * embed_dim`).
///
/// Defaults: `qkv: fused`, `activation: gelu`, `pooling: cls`, `dropout: 0`,
/// `attention_dropout: 0`, `drop_path: 0`, `final_norm: true`, `norm_eps: 1e-5`,
/// `init_std: 0.02`, no `distillation`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vit {
    pub tokenizer: Tokenizer,
    pub patch: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub heads: usize,
    #[serde(default)]
    pub qkv: Qkv,
    #[serde(default)]
    pub mlp_hidden: Option<usize>,
    #[serde(default)]
    pub mlp_ratio: Option<f64>,
    #[serde(default)]
    pub activation: Activation,
    pub positions: Positions,
    #[serde(default)]
    pub pooling: Pooling,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default)]
    pub drop_path: f64,
    #[serde(default = "yes")]
    pub final_norm: bool,
    /// Every LayerNorm's eps: PyTorch's default 1e-5, timm's ViTs 1e-6.
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    #[serde(default)]
    pub distillation: Option<Distillation>,
}

/// `distillation: { teacher, loss, alpha, tau }`: DeiT's distillation token and loss.
///
/// `teacher` names the sibling spec `<teacher>.yaml`; `loss` is required; `alpha` defaults
/// to 0.5; `tau` is for the soft loss only and defaults to 1.0 there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distillation {
    pub teacher: String,
    pub loss: DistillLoss,
    #[serde(default = "half")]
    pub alpha: f64,
    #[serde(default)]
    pub tau: Option<f64>,
}

/// `cnn: { layers: [...] }`, applied in order to the input image.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cnn {
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    pub layers: Vec<Layer>,
}

/// One CNN layer: a bare name (`- relu`) or a one-key mapping (`- conv: { ... }`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Conv(Conv),
    BatchNorm(BatchNorm),
    MaxPool(Pool),
    AvgPool(Pool),
    Relu,
    Gelu,
    /// `dropout: p`.
    Dropout(f64),
    Flatten,
    Linear(Linear),
}

/// `conv: { in, out, kernel, stride, padding }`; `stride` defaults to 1, `padding` to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv {
    #[serde(rename = "in")]
    pub inp: usize,
    pub out: usize,
    pub kernel: usize,
    #[serde(default = "one_usize")]
    pub stride: usize,
    #[serde(default)]
    pub padding: usize,
}

/// `batch_norm: { features, eps, momentum }`, PyTorch's `nn.BatchNorm2d(features, eps,
/// momentum)`; `eps` defaults to 1e-5 and `momentum` to 0.1, as there.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNorm {
    pub features: usize,
    #[serde(default = "batch_norm_eps")]
    pub eps: f64,
    #[serde(default = "batch_norm_momentum")]
    pub momentum: f64,
}

/// `max_pool` / `avg_pool: { kernel, stride }`; `stride` defaults to `kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub kernel: usize,
    #[serde(default)]
    pub stride: Option<usize>,
}

/// `linear: { in, out }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    #[serde(rename = "in")]
    pub inp: usize,
    pub out: usize,
}

/// `train:`. Required: `dataset`, `epochs`, `batch_size`, `optimizer`.
///
/// Defaults: `seed: 0`, `schedule: { kind: constant }`, no augmentation,
/// `normalize: { mean: 0, std: 1 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Train {
    pub dataset: Dataset,
    pub epochs: usize,
    pub batch_size: usize,
    #[serde(default)]
    pub seed: u64,
    pub optimizer: Optimizer,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub augment: Augment,
    #[serde(default)]
    pub normalize: Normalize,
}

/// `optimizer: { kind, lr, weight_decay, betas, eps }`; `kind` and `lr` are required.
///
/// Defaults (applied by `check`, as they depend on `kind`): `weight_decay` 0.01 for adamw
/// and 0 otherwise, `betas: [0.9, 0.999]`, `eps: 1e-8` (the last two not for sgd).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: Option<f64>,
    #[serde(default)]
    pub betas: Option<[f64; 2]>,
    #[serde(default)]
    pub eps: Option<f64>,
}

/// `schedule: { kind, warmup_epochs, min_lr }`; `warmup_epochs` is required by, and `min_lr`
/// (default 0) only allowed with, `warmup_cosine`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub kind: ScheduleKind,
    #[serde(default)]
    pub warmup_epochs: Option<usize>,
    #[serde(default)]
    pub min_lr: Option<f64>,
}

/// `augment: { random_crop: { size, padding }, horizontal_flip }`; no crop, no flip, and
/// `padding: 0` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    #[serde(default)]
    pub random_crop: Option<RandomCrop>,
    #[serde(default)]
    pub horizontal_flip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCrop {
    pub size: usize,
    #[serde(default)]
    pub padding: usize,
}

/// `normalize: { mean, std }` on pixels scaled to [0, 1]; `mean: 0`, `std: 1` by default.
/// Each is one number for every channel or a list of one number per channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    #[serde(default = "zero_per_channel")]
    pub mean: PerChannel,
    #[serde(default = "one_per_channel")]
    pub std: PerChannel,
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize {
            mean: zero_per_channel(),
            std: one_per_channel(),
        }
    }
}

/// `0.5` (every channel) or `[0.485, 0.456, 0.406]` (one per channel).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "each value to be one of: a number for every channel, a list of one number per channel"
)]
pub enum PerChannel {
    All(f64),
    Each(Vec<f64>),
}

fn zero_per_channel() -> PerChannel {
    PerChannel::All(0.0)
}

fn one_per_channel() -> PerChannel {
    PerChannel::All(1.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    Patches,
    Conv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qkv {
    #[default]
    Fused,
    PerHead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Gelu,
    Relu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    Sinusoidal,
    Learned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    #[default]
    Cls,
    Mean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistillLoss {
    Hard,
    Soft,
}

/// `dataset: mnist | fashion_mnist`, or `dataset: { image_folder: ROOT, resize: false }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "`dataset` to be one of `mnist`, `fashion_mnist`, `{ image_folder: PATH, resize: false }`"
)]
pub enum Dataset {
    Named(NamedDataset),
    ImageFolder(ImageFolder),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedDataset {
    Mnist,
    FashionMnist,
}

/// torchvision's `ImageFolder` layout: `<image_folder>/train/<class>/*`, `.../test/<class>/*`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFolder {
    pub image_folder: String,
    /// Resize images of another size to the model's input instead of refusing them.
    #[serde(default)]
    pub resize: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Adam,
    #[serde(rename = "adamw")]
    AdamW,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    WarmupCosine,
}

fn yes() -> bool {
    true
}

fn half() -> f64 {
    0.5
}

fn batch_norm_eps() -> f64 {
    1e-5
}

fn batch_norm_momentum() -> f64 {
    0.1
}

fn one_usize() -> usize {
    1
}

fn default_norm_eps() -> f64 {
    1e-5
}

fn default_init_std() -> f64 {
    0.02
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Span;

    fn model(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn all_shipped_models_parse() {
        for name in ["lightvit.yaml", "vit.yaml", "deit.yaml", "cnn.yaml"] {
            if let Err(d) = parse(&model(name)) {
                panic!("{name}: {}", d.message);
            }
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let spec = parse(&model("lightvit.yaml")).unwrap();
        let vit = spec.vit.unwrap();
        assert_eq!(
            (vit.qkv, vit.pooling, vit.dropout, vit.init_std),
            (Qkv::PerHead, Pooling::Cls, 0.0, 0.02)
        );
        assert_eq!(
            (vit.mlp_hidden, vit.mlp_ratio, vit.final_norm),
            (Some(32), None, false)
        );
        assert_eq!(
            spec.train.normalize,
            Normalize {
                mean: PerChannel::All(0.0),
                std: PerChannel::All(1.0)
            }
        );
        assert_eq!(spec.train.augment, Augment::default());
    }

    #[test]
    fn cnn_layers_parse_as_bare_names_and_one_key_maps() {
        let spec = parse(&model("cnn.yaml")).unwrap();
        let layers = spec.cnn.unwrap().layers;
        assert_eq!(
            layers[0],
            Layer::Conv(Conv {
                inp: 1,
                out: 32,
                kernel: 3,
                stride: 1,
                padding: 1
            })
        );
        assert_eq!(layers[1], Layer::Relu);
        assert_eq!(
            layers[2],
            Layer::MaxPool(Pool {
                kernel: 2,
                stride: None
            })
        );
        assert_eq!(layers[11], Layer::Dropout(0.5));
        assert_eq!(
            spec.locations.value("cnn.layers[11].dropout"),
            Span::new(18, 16, 3)
        );
    }

    #[test]
    fn records_locations_of_the_parsed_spec() {
        let spec = parse(&model("vit.yaml")).unwrap();
        assert_eq!(spec.locations.value("vit.heads"), Span::new(10, 10, 1));
        assert_eq!(
            spec.locations.value("train.optimizer.lr"),
            Span::new(26, 33, 6)
        );
    }
}
