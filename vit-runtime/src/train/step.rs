//! The forward half of a training step: the objective and what the model predicted.
use super::evaluate::predictions;
use super::loss;
use crate::device::SeededDevice;
use crate::model::{Heads, ImageClassifier};
use dfdx::prelude::*;

/// The forward half of a training step: the loss to minimise and the predicted classes.
///
/// The teacher sees the same (augmented) batch in evaluation mode, through an untracked
/// copy of `x`: its logits are constants of the loss, so no gradient can reach it.
pub fn training_loss<
    M,
    Teacher,
    const C: usize,
    const H: usize,
    const W: usize,
    const K: usize,
    D,
>(
    model: &mut M,
    teacher: Option<&Teacher>,
    x: Tensor<(usize, Const<C>, Const<H>, Const<W>), f32, D>,
    labels: Tensor<(usize, Const<K>), f32, D>,
    grads: Gradients<f32, D>,
) -> (Tensor<Rank0, f32, D, OwnedTape<f32, D>>, Vec<usize>)
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
    Teacher: ImageClassifier<C, H, W, K, D>,
{
    let teacher_logits = teacher.map(|t| t.predict(x.clone()));
    let heads = model.train_heads(x.traced(grads));
    let predicted = predictions(&heads);
    let loss = objective::<M, C, H, W, K, D>(heads, labels, teacher_logits.as_ref());
    (loss, predicted)
}

/// The loss to minimise: cross-entropy, or DeiT's distillation objective.
fn objective<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    heads: Heads<usize, K, D, OwnedTape<f32, D>>,
    labels: Tensor<(usize, Const<K>), f32, D>,
    teacher: Option<&Tensor<(usize, Const<K>), f32, D>>,
) -> Tensor<Rank0, f32, D, OwnedTape<f32, D>>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    match (heads.distill, M::DISTILLATION, teacher) {
        (Some(dist), Some(d), Some(teacher)) => {
            loss::distillation(heads.class, dist, labels, teacher, d.loss, d.alpha)
        }
        // A second head without a teacher learns the labels too.
        (Some(dist), _, _) => {
            (loss::cross_entropy(heads.class, labels.clone()) + loss::cross_entropy(dist, labels))
                * 0.5
        }
        (None, _, _) => loss::cross_entropy(heads.class, labels),
    }
}
