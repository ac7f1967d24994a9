//! The validated model description: what `check` produces and `codegen` consumes.
//!
//! Every size in here is final: derived dimensions (patch grid, head dim, sequence
//! length, conv output sizes, ...) are computed once, in `check`, and nowhere else.

/// A validated spec file.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Spec name as written (`deit`); the generated type is its CamelCase (`Deit`).
    pub name: String,
    pub input: Input,
    pub classes: usize,
    pub arch: Arch,
    pub train: Recipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arch {
    Vit(Vit),
    Cnn(Cnn),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vit {
    pub tokenizer: Tokenizer,
    pub patch: usize,
    /// Patch grid: `input.height / patch` x `input.width / patch`.
    pub grid_h: usize,
    pub grid_w: usize,
    /// `grid_h * grid_w`.
    pub num_patches: usize,
    /// `channels * patch * patch`: length of one flattened patch.
    pub patch_dim: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub heads: usize,
    /// `embed_dim / heads`.
    pub head_dim: usize,
    pub qkv: Qkv,
    pub mlp_hidden: usize,
    pub activation: Activation,
    pub positions: Positions,
    pub pooling: Pooling,
    pub dropout: f64,
    pub attention_dropout: f64,
    /// Maximum drop-path rate; block `i` uses `drop_path * i / (depth - 1)` as in timm.
    pub drop_path: f64,
    pub final_norm: bool,
    pub norm_eps: f64,
    /// Std of the truncated normal used for learned tokens and positions.
    pub init_std: f64,
    pub distillation: Option<Distillation>,
    /// Class token (if pooling is `cls`) + distillation token (if any).
    pub extra_tokens: usize,
    /// `num_patches + extra_tokens`.
    pub seq_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenizer {
    /// Cut into patches, flatten each (c, y, x), map with a linear layer.
    Patches,
    /// A conv with stride = kernel = patch (timm's `PatchEmbed`).
    Conv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qkv {
    /// One `embed_dim -> 3 * embed_dim` map and an output projection (timm).
    Fused,
    /// Separate `head_dim -> head_dim` q, k, v maps per head, no projection (the course's LightViT).
    PerHead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    Relu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    Sinusoidal,
    Learned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Cls,
    Mean,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Distillation {
    /// Spec name of the teacher (`cnn`); its type is the CamelCase of it.
    pub teacher: String,
    pub loss: DistillLoss,
    pub alpha: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DistillLoss {
    Hard,
    Soft { tau: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cnn {
    pub layers: Vec<CnnLayer>,
}

/// Activation shape between CNN layers: `(channels, height, width)` or flat features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Map { c: usize, h: usize, w: usize },
    Flat(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum CnnLayer {
    Conv {
        in_c: usize,
        out_c: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
    },
    /// Normalises the `c` channels of a map; the map's shape is unchanged.
    BatchNorm {
        c: usize,
        eps: f64,
        momentum: f64,
    },
    MaxPool {
        c: usize,
        kernel: usize,
        stride: usize,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
    },
    AvgPool {
        c: usize,
        kernel: usize,
        stride: usize,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
    },
    Relu,
    Gelu,
    Dropout(f64),
    /// `(c, h, w) -> size = c * h * w`.
    Flatten {
        c: usize,
        h: usize,
        w: usize,
        size: usize,
    },
    Linear {
        inp: usize,
        out: usize,
    },
}

/// The training recipe: the runtime's own type, so that the two cannot disagree.
pub use vit_spec::{
    Augment, Dataset, ImageFolder, Normalize, Optimizer, OptimizerKind, Recipe, Schedule,
};
