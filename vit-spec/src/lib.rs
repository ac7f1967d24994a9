//! The training recipe of a spec (the `train:` section of its YAML), checked.
//!
//! One definition for both sides: `vit-macros` checks a spec's `train:` into a [`Recipe`]
//! and emits it ([`Recipe::to_tokens`], feature `tokens`) as the generated model's `const`;
//! `vit-runtime` trains by it (as `vit_runtime::recipe`). So the runtime never re-reads
//! YAML, the compiled model and its recipe cannot drift apart, and a new recipe key is a
//! field here, the key's spelling in the macro's `spec::Train`, and its check.
//!
//! Strings and lists are `&'static` so that a recipe is a `const` of the generated code.
//!
//! [`did_you_mean`] is the one rule by which both suggest a name for a mistyped one (a spec
//! key, a teacher, a model on the command line).

#[cfg(feature = "tokens")]
mod tokens;

/// The candidate closest to `wrong`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let typo_budget = (wrong.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(wrong, c),
                strsim::jaro_winkler(wrong, c),
                c,
            )
        })
        .filter(|&(edits, similarity, _)| edits <= typo_budget || similarity >= 0.9)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(.., c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_model_for_a_typo_and_nothing_for_another_word() {
        let models = ["cnn", "deit", "deit_long", "lightvit", "vit", "vit_long"];
        assert_eq!(did_you_mean("lightvti", models), Some("lightvit"));
        assert_eq!(did_you_mean("deit_lnog", models), Some("deit_long"));
        assert_eq!(did_you_mean("resnet", models), None);
    }
}

/// The data sets the runtime can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    Mnist,
    FashionMnist,
    /// Your own images in torchvision's `ImageFolder` layout.
    ImageFolder(ImageFolder),
}

/// `<root>/train/<class>/*.png|jpg` and `<root>/test/<class>/*`; the classes are the sorted
/// folder names of `train/`, as torchvision's `ImageFolder` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageFolder {
    /// As written in the spec; a relative root is resolved against the data dir.
    pub root: &'static str,
    /// Resize every image to the spec's input size (bilinear); without it an image of
    /// another size is an error.
    pub resize: bool,
}

impl Dataset {
    /// Name as written in specs and on the command line (an image folder: its root).
    pub const fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion_mnist",
            Dataset::ImageFolder(folder) => folder.root,
        }
    }

    /// The class names of a data set whose classes are known before it is loaded (MNIST,
    /// Fashion-MNIST); an image folder's come from its folder names when it is loaded.
    pub const fn known_class_names(self) -> Option<[&'static str; 10]> {
        match self {
            Dataset::Mnist => Some(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
            Dataset::FashionMnist => Some([
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
            ]),
            Dataset::ImageFolder(_) => None,
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

/// `x -> (x / 255 - mean[c]) / std[c]` for channel `c`.
///
/// Each list holds one value for every channel, or a single value for all of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub mean: &'static [f32],
    pub std: &'static [f32],
}

impl Normalize {
    /// Mean 0 and std 1 on every channel: pixels scaled to [0, 1] and nothing more.
    pub const IDENTITY: Normalize = Normalize {
        mean: &[0.0],
        std: &[1.0],
    };

    /// `(mean, std)` of channel `c`.
    pub fn channel(&self, c: usize) -> (f32, f32) {
        let pick = |values: &[f32]| match values {
            [one] => *one,
            many => many.get(c).copied().unwrap_or(f32::NAN),
        };
        (pick(self.mean), pick(self.std))
    }
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
