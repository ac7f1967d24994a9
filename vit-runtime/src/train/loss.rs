//! Classification and distillation losses.
use crate::model::DistillLoss;
use dfdx::prelude::*;

/// Mean cross-entropy of `logits` against one-hot (or soft) `targets`.
pub fn cross_entropy<B: Dim, const K: usize, D: Device<f32>, T: Tape<f32, D>>(
    logits: Tensor<(B, Const<K>), f32, D, T>,
    targets: Tensor<(B, Const<K>), f32, D>,
) -> Tensor<Rank0, f32, D, T> {
    dfdx::losses::cross_entropy_with_logits_loss(logits, targets)
}

/// One-hot rows of the argmax of each row of `logits` (the hard teacher labels).
pub fn argmax_one_hot<B: Dim, const K: usize, D: Device<f32>>(
    logits: &Tensor<(B, Const<K>), f32, D>,
) -> Tensor<(B, Const<K>), f32, D> {
    let values = logits.as_vec();
    let one_hot: Vec<f32> = values
        .chunks(K)
        .flat_map(|row| {
            let best = argmax(row);
            (0..K).map(move |k| if k == best { 1.0 } else { 0.0 })
        })
        .collect();
    logits.device().tensor_from_vec(one_hot, *logits.shape())
}

/// Index of the largest value (the first one on ties, as `torch.argmax`).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

/// DeiT's objective: `(1 - alpha) * CE(class, y) + alpha * distill(dist, teacher)`.
///
/// Hard: `distill = CE(dist, argmax teacher)`. Soft: `tau^2 * KL(softmax(teacher/tau) ||
/// softmax(dist/tau))`, summed over classes and averaged over the batch (PyTorch's
/// `batchmean`; DeiT's reference code divides by batch x classes, K times less).
pub fn distillation<B: Dim, const K: usize, D: Device<f32>, T: Tape<f32, D>>(
    class: Tensor<(B, Const<K>), f32, D, T>,
    dist: Tensor<(B, Const<K>), f32, D, T>,
    labels: Tensor<(B, Const<K>), f32, D>,
    teacher: &Tensor<(B, Const<K>), f32, D>,
    loss: DistillLoss,
    alpha: f32,
) -> Tensor<Rank0, f32, D, T> {
    let base = cross_entropy(class, labels) * (1.0 - alpha);
    let distill = match loss {
        DistillLoss::Hard => cross_entropy(dist, argmax_one_hot(teacher)),
        DistillLoss::Soft { tau } => soft_distillation(dist, teacher, tau),
    };
    base + distill * alpha
}

/// `tau^2 * KL(p || q)` per image, batch-mean, with `p = softmax(teacher / tau)` and
/// `q = softmax(dist / tau)`.
///
/// Written with `log_softmax` on both sides: a confident teacher's `p` underflows to 0 in
/// some classes, where `p * ln(p)` (dfdx's `kl_div_with_logits_loss`) would give NaN.
fn soft_distillation<B: Dim, const K: usize, D: Device<f32>, T: Tape<f32, D>>(
    dist: Tensor<(B, Const<K>), f32, D, T>,
    teacher: &Tensor<(B, Const<K>), f32, D>,
    tau: f32,
) -> Tensor<Rank0, f32, D, T> {
    let batch = dist.shape().0.size() as f32;
    let log_p = (teacher.clone() / tau).log_softmax::<Axis<1>>();
    let p = log_p.clone().exp();
    let log_q = (dist / tau).log_softmax::<Axis<1>>();
    let kl = ((log_q.negate() + log_p) * p).sum::<Rank0, _>();
    kl * (tau * tau / batch)
}
