//! A model's predictions and test-set results, and loading a model to evaluate.
use super::checkpoint::{self, State};
use super::loss;
use super::metrics::Confusion;
use crate::data::{self, Loader};
use crate::device::SeededDevice;
use crate::model::{Heads, ImageClassifier};
use crate::recipe::Recipe;
use dfdx::prelude::*;
use std::path::{Path, PathBuf};

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

/// Predicted classes of a forward pass (DeiT: of its averaged heads).
pub(super) fn predictions<const K: usize, D: Device<f32>, T: Tape<f32, D>>(
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

pub(super) fn count_correct(predicted: &[usize], labels: &[u8]) -> usize {
    predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count()
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

/// Weights to start from or to evaluate: a safetensors file with the model's tensor names
/// (a PyTorch or timm `state_dict`, a vit-rs checkpoint), loaded as it is or, with
/// `adapt`, adapted to the model's sizes as timm adapts pretrained weights
/// ([`checkpoint::load_weights_adapted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightFile {
    pub path: PathBuf,
    pub adapt: bool,
}

/// Loads `weights` into `model`; says on stderr what was adapted, tensor by tensor, and
/// which tensors of the file the model did not use.
pub fn load_weight_file<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    weights: &WeightFile,
    model: &mut M,
) -> anyhow::Result<()>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let path = &weights.path;
    let unused = if weights.adapt {
        let adapted = checkpoint::load_weights_adapted(path, model, M::NAME, (H, W))?;
        for adaptation in &adapted.adaptations {
            eprintln!("adapted {adaptation}");
        }
        if adapted.adaptations.is_empty() {
            eprintln!(
                "--adapt: every tensor of {} fits `{}` as it is",
                path.display(),
                M::NAME
            );
        }
        adapted.unused
    } else {
        checkpoint::load_weights(path, model, M::NAME).map_err(|e| match &e {
            checkpoint::CheckpointError::Mismatch { problem, .. } if problem.contains("shape") => {
                anyhow::anyhow!(
                    "{e}\n  (--adapt loads weights made for other sizes as timm does: positions \
                     and patch kernels resampled, a fresh head for other classes)"
                )
            }
            _ => e.into(),
        })?
    };
    warn_unused(path, &unused);
    Ok(())
}

/// Builds `M` with the weights of `weights`, for evaluation.
pub fn load_weights_for_eval<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    weights: &WeightFile,
    dev: &D,
) -> anyhow::Result<M>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let mut model = M::build(dev);
    load_weight_file::<M, C, H, W, K, D>(weights, &mut model)?;
    Ok(model)
}
