//! What every generated model offers the runtime, whatever its spec.
use crate::nn::Mode;
use crate::recipe::Recipe;
use dfdx::prelude::*;

/// The two families of specs: a `vit:` section or a `cnn:` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vit,
    Cnn,
}

impl Kind {
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Vit => "vit",
            Kind::Cnn => "cnn",
        }
    }
}

/// Facts about a compiled spec, computed by vit-macros from the YAML.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub kind: Kind,
    /// Trainable parameters (fixed sinusoidal tables excluded), as PyTorch counts them.
    pub params: usize,
    /// Sequence length including class/distillation tokens (0 for CNNs).
    pub tokens: usize,
    pub embed_dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub mlp_hidden: usize,
    /// Forward FLOPs per image: 2 x the multiply-adds of every matmul and conv.
    pub flops: u64,
}

/// How a distilled model learns from its teacher.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DistillLoss {
    /// `CE(dist_logits, argmax teacher(x))`.
    Hard,
    /// `tau^2 * KL(softmax(teacher / tau) || softmax(dist / tau))`.
    Soft { tau: f32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distillation {
    /// Spec name of the teacher.
    pub teacher: &'static str,
    pub loss: DistillLoss,
    /// Weight of the distillation term: `(1 - alpha) * CE(class) + alpha * distill`.
    pub alpha: f32,
}

/// The compile-time description of a model: its spec file, recipe and sizes.
pub trait ModelSpec {
    /// Spec name (`deit`).
    const NAME: &'static str;
    /// The YAML the model was compiled from, saved beside every checkpoint.
    const SPEC_YAML: &'static str;
    const RECIPE: Recipe;
    const SUMMARY: Summary;
    const DISTILLATION: Option<Distillation>;
}

/// Output of a training-mode forward pass: the class head and, for DeiT, the distillation head.
pub struct Heads<B: Dim, const K: usize, D: Device<f32>, T> {
    pub class: Tensor<(B, Const<K>), f32, D, T>,
    pub distill: Option<Tensor<(B, Const<K>), f32, D, T>>,
}

/// Attention maps of every block for a batch, row-major `(batch, blocks, heads, tokens, tokens)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionRecord {
    pub batch: usize,
    pub blocks: usize,
    pub heads: usize,
    pub tokens: usize,
    /// Tokens before the patches (class, distillation).
    pub prefix_tokens: usize,
    pub grid: (usize, usize),
    pub data: Vec<f32>,
}

/// A model for `(C, H, W)` images and `K` classes; the training loop is generic over it.
pub trait ImageClassifier<
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    D: crate::nn::Kernels,
>: TensorCollection<f32, D, To<f32, D> = Self> + ModelSpec + Clone + crate::nn::Shareable
{
    /// The spec's `distillation.teacher` (a model of the same images and classes); `Self`
    /// for a model that does not distil.
    type Teacher: ImageClassifier<C, H, W, K, D>;

    /// All heads, with dropout/drop path active when `mode` is `Train`.
    fn heads<B: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T>,
        mode: Mode,
    ) -> Heads<B, K, D, T>;

    /// A training step's forward pass: [`Self::heads`] in `Mode::Train`, after which the
    /// running statistics of batch-norm layers have moved toward this batch's, as in
    /// PyTorch's training-mode forward.
    fn train_heads<T: Tape<f32, D>>(
        &mut self,
        x: Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D, T>,
    ) -> Heads<usize, K, D, T> {
        self.heads(x, Mode::Train)
    }

    /// Every head in evaluation mode, in chunks of about the device's
    /// [`Kernels::EVAL_CHUNK_FLOPS`](crate::nn::Kernels::EVAL_CHUNK_FLOPS), run as
    /// [`Kernels::map_chunks`](crate::nn::Kernels::map_chunks) schedules them.
    fn eval_heads(
        &self,
        x: Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D>,
    ) -> Heads<usize, K, D, NoneTape> {
        let n = x.shape().0;
        let chunk = D::EVAL_CHUNK_FLOPS.map_or(n, |budget| {
            (budget / Self::SUMMARY.flops.max(1)).max(1) as usize
        });
        if n <= chunk {
            return self.heads(x, Mode::Eval);
        }
        let parts = D::map_chunks(n.div_ceil(chunk), |i| {
            let start = i * chunk;
            let images = x.clone().slice((start..(start + chunk).min(n), .., .., ..));
            self.heads(images, Mode::Eval)
        });
        let mut parts = parts.into_iter();
        let first = parts.next().expect("n > chunk > 0, so one chunk at least");
        parts.fold(first, |all, part| Heads {
            class: (all.class, part.class).concat_along(Axis::<0>),
            distill: all
                .distill
                .zip(part.distill)
                .map(|(a, b)| (a, b).concat_along(Axis::<0>)),
        })
    }

    /// Inference logits (DeiT: the mean of its two heads).
    fn predict<B: Dim>(
        &self,
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D>,
    ) -> Tensor<(B, Const<K>), f32, D> {
        let b = x.shape().0;
        let heads = self.eval_heads(x.reshape_like(&(b.size(), Const, Const, Const)));
        let logits = match heads.distill {
            Some(distill) => (heads.class + distill) * 0.5,
            None => heads.class,
        };
        logits.reshape_like(&(b, Const))
    }

    /// Attention maps of every block (ViTs), `None` for models without attention.
    fn attention(
        &self,
        x: Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D>,
    ) -> Option<AttentionRecord>;
}

/// Something to do with a compiled model, whichever it is: the registry's `visit` (from
/// `models!`) calls [`Visitor::visit`] with the model named on the command line, its image
/// size and its class count, so that commands are written once, generically.
pub trait Visitor<D: crate::nn::Kernels> {
    type Output;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>;
}
