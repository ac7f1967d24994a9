//! The training recipe of a spec (the `train:` section of its YAML).
//!
//! Generated models carry their recipe as a `const`, so the runtime never re-reads YAML:
//! the compiled model and its recipe cannot drift apart.

/// The data sets the runtime can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    Mnist,
    FashionMnist,
}

impl Dataset {
    /// Name as written in specs and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion_mnist",
        }
    }

    /// Human-readable class names, for confusion matrices and plots.
    pub const fn class_names(self) -> [&'static str; 10] {
        match self {
            Dataset::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            Dataset::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    AdamW,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub lr: f64,
    pub weight_decay: f64,
    pub betas: (f64, f64),
    pub eps: f64,
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

/// On-the-fly augmentation, applied to training batches only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// `RandomCrop(size, padding)`: zero-pad by `padding`, then crop `size` x `size`.
    pub random_crop: Option<(usize, usize)>,
    pub horizontal_flip: bool,
}

/// `x -> (x / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub mean: f32,
    pub std: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    pub dataset: Dataset,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub augment: Augment,
    pub normalize: Normalize,
}
