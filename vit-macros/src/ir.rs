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
    pub train: Train,
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

/// The training recipe; mirrors `vit_runtime::recipe::Recipe`.
#[derive(Debug, Clone, PartialEq)]
pub struct Train {
    pub dataset: Dataset,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub augment: Augment,
    pub normalize: Normalize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dataset {
    Mnist,
    FashionMnist,
    /// torchvision's `ImageFolder` layout under `root`; its image size and class count are
    /// checked when it is loaded.
    ImageFolder {
        root: String,
        resize: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    AdamW,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Constant,
    /// Linear warm-up from 0 over `warmup_epochs`, then cosine decay to `min_lr`.
    WarmupCosine {
        warmup_epochs: usize,
        min_lr: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// `RandomCrop(size, padding)` with zero padding.
    pub random_crop: Option<(usize, usize)>,
    pub horizontal_flip: bool,
}

/// Per channel: one value for all channels, or one per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}
