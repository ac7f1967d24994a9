//! DeiT's distillation objective: both variants against a hand computation, a confident
//! teacher that must not produce NaN, and the teacher kept out of backpropagation by the
//! training step itself (`train::training_loss`).
//!
//! That DeiT's inference output is the mean of its heads is checked in `tests/models.rs`.
mod common;

use common::params_with_gradients;
use vit_runtime::dfdx::nn::tensor_collection::TensorCollection;
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::DistillLoss;
use vit_runtime::models::{Cnn, Deit};
use vit_runtime::train::{loss, training_loss};

/// Two images, three classes. The teacher's argmax (0, 1) disagrees with the labels (1, 2).
const CLASS: [[f64; 3]; 2] = [[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]];
const DIST: [[f64; 3]; 2] = [[0.3, 0.2, -0.4], [2.0, 1.0, 0.0]];
const TEACHER: [[f64; 3]; 2] = [[3.0, 0.0, 1.0], [0.0, 5.0, 1.0]];
const LABELS: [usize; 2] = [1, 2];
const ALPHA: f64 = 0.5;

fn log_softmax(row: &[f64; 3], tau: f64) -> [f64; 3] {
    let z = row.map(|v| v / tau);
    let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
    z.map(|v| v - lse)
}

/// `-log softmax(row)[target]`.
fn ce(row: &[f64; 3], target: usize) -> f64 {
    -log_softmax(row, 1.0)[target]
}

fn tensor(rows: [[f64; 3]; 2]) -> Tensor<(usize, Const<3>), f32, Cpu> {
    let data = rows.iter().flatten().map(|&v| v as f32).collect();
    Cpu::default().tensor_from_vec(data, (2, Const))
}

fn one_hot(labels: [usize; 2]) -> Tensor<(usize, Const<3>), f32, Cpu> {
    tensor(labels.map(|l| std::array::from_fn(|k| if k == l { 1.0 } else { 0.0 })))
}

/// `loss::distillation` as the training loop calls it (student logits traced).
fn computed(rows: [[f64; 3]; 2], teacher: [[f64; 3]; 2], variant: DistillLoss) -> f64 {
    let class = tensor(CLASS).leaky_traced();
    let dist = tensor(rows).leaky_traced();
    let teacher = tensor(teacher);
    let loss = loss::distillation(
        class,
        dist,
        one_hot(LABELS),
        &teacher,
        variant,
        ALPHA as f32,
    );
    loss.as_vec()[0] as f64
}

fn class_term() -> f64 {
    (ce(&CLASS[0], LABELS[0]) + ce(&CLASS[1], LABELS[1])) / 2.0
}

#[test]
fn hard_distillation_equals_the_hand_computation() {
    // argmax of the teacher rows: 0 and 1.
    let distill = (ce(&DIST[0], 0) + ce(&DIST[1], 1)) / 2.0;
    let expected = (1.0 - ALPHA) * class_term() + ALPHA * distill;
    let got = computed(DIST, TEACHER, DistillLoss::Hard);
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // Not the plain label loss: the teacher's labels changed it.
    assert!((got - class_term()).abs() > 0.1);
}

#[test]
fn soft_distillation_equals_the_hand_computation() {
    let tau = 2.0;
    let kl = |s: &[f64; 3], t: &[f64; 3]| {
        let (lq, lp) = (log_softmax(s, tau), log_softmax(t, tau));
        (0..3).map(|k| lp[k].exp() * (lp[k] - lq[k])).sum::<f64>()
    };
    let distill = tau * tau * (kl(&DIST[0], &TEACHER[0]) + kl(&DIST[1], &TEACHER[1])) / 2.0;
    let expected = (1.0 - ALPHA) * class_term() + ALPHA * distill;
    let got = computed(DIST, TEACHER, DistillLoss::Soft { tau: tau as f32 });
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // A student that copies the teacher pays only the label term.
    let copied = computed(TEACHER, TEACHER, DistillLoss::Soft { tau: tau as f32 });
    let label_only = (1.0 - ALPHA) * class_term();
    assert!(
        (copied - label_only).abs() < 1e-5,
        "{copied} vs {label_only}"
    );
}

#[test]
fn a_confident_teacher_gives_a_finite_soft_loss_and_gradient() {
    // exp(-200) underflows in f32: p = 0 exactly for two classes of each row.
    let confident = [[200.0, 0.0, 0.0], [0.0, 0.0, 200.0]];
    let dist = tensor(DIST);
    let loss = loss::distillation(
        tensor(CLASS).leaky_traced(),
        dist.clone().leaky_traced(),
        one_hot(LABELS),
        &tensor(confident),
        DistillLoss::Soft { tau: 1.0 },
        ALPHA as f32,
    );
    let value = loss.as_vec()[0];
    let grads = loss.backward();
    assert!(value.is_finite(), "loss {value}");
    assert!(grads.get(&dist).as_vec().iter().all(|g| g.is_finite()));
}

/// Every trainable tensor's gradient, in visiting order.
fn gradients_of<M: TensorCollection<f32, Cpu>>(
    model: &M,
    grads: &mut Gradients<f32, Cpu>,
) -> Vec<Vec<f32>> {
    params_with_gradients(model, grads)
        .into_iter()
        .filter_map(|p| p.gradient)
        .collect()
}

#[test]
fn the_training_step_sends_no_gradient_to_the_teacher() {
    let dev = Cpu::seed_from_u64(5);
    let mut student = Deit::<f32, Cpu>::build(&dev);
    let teacher = Cnn::<f32, Cpu>::build(&dev);
    let x: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Cpu> =
        dev.sample_normal_like(&(4usize, Const, Const, Const));
    let labels: Tensor<(usize, Const<10>), f32, Cpu> = dev.tensor_from_vec(
        (0..4)
            .flat_map(|i| (0..10).map(move |k| if k == i { 1.0 } else { 0.0 }))
            .collect(),
        (4, Const),
    );
    // Gradient buffers for the teacher too, so that any gradient sent its way is kept.
    let mut grads = student.alloc_grads();
    teacher.zero_grads(&mut grads);
    let (loss, predicted) = training_loss(&mut student, Some(&teacher), x, labels, grads);
    assert_eq!(predicted.len(), 4);
    let mut grads = loss.backward();

    let teacher_grads = gradients_of(&teacher, &mut grads);
    assert_eq!(teacher_grads.len(), 10, "the CNN's 5 weights and 5 biases");
    assert!(teacher_grads.iter().flatten().all(|&g| g == 0.0));
    let student_grads = gradients_of(&student, &mut grads);
    assert!(
        student_grads.iter().all(|g| g.iter().any(|&v| v != 0.0)),
        "every student tensor learns from the same loss"
    );
}
