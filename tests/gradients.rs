//! Finite-difference checks of the analytic gradients of the generated models.
//!
//! For every trainable tensor of lightvit, deit (both heads in the loss) and cnn, a few
//! entries are nudged by `±EPS` and the central difference of the loss is compared with
//! the gradient from `backward()`; vit is checked in training mode, through its dropout
//! and attention-dropout masks. dfdx 0.13 had two gradient bugs that this catches
//! (slice backward assigning instead of adding, `accurate_gelu`'s derivative off by
//! `sqrt 2`): with them, errors reach 100%; with the workarounds, a few % of f32 noise.
mod common;

use common::{params_with_gradients, Param};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::SeedableRng;
use vit_runtime::dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{Heads, ImageClassifier};
use vit_runtime::models::{Cnn, Deit, Lightvit, Vit};
use vit_runtime::nn::Mode;
use vit_runtime::train::loss::cross_entropy;

const CLASSES: usize = 10;
const BATCH: usize = 3;
/// Step of the central difference: large enough that f32 rounding of the loss (~1e-7)
/// stays far below the difference, small enough for the curvature of a smooth model.
const EPS: f32 = 3e-3;
/// Pass if `|analytic - numeric| <= ABS_TOL + REL_TOL * max(|analytic|, |numeric|)`.
const ABS_TOL: f32 = 2e-3;
const REL_TOL: f32 = 0.08;
/// Entries checked per tensor: the one with the largest analytic gradient (so that every
/// tensor is checked where its gradient is far above the absolute tolerance) plus random ones.
const SAMPLES: usize = 5;
/// Non-smooth models (ReLU, max pool): an entry is skipped when the differences with
/// `EPS` and `EPS / 2` disagree by more than this fraction (plus `ABS_TOL`): a kink or a
/// pooling tie lies within `EPS` of it.
const KINK_TOL: f32 = 0.2;
/// ...and at least this fraction of the sampled entries must still be checked.
const MIN_CHECKED: f64 = 0.8;

type Images = Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Cpu>;
type Targets = Tensor<(usize, Const<CLASSES>), f32, Cpu>;

/// Whether the loss is smooth in every parameter (no ReLU or max pool).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Smoothness {
    Smooth,
    Kinked,
}

/// A fixed batch and the loss of a model on it.
struct Problem {
    x: Images,
    /// Labels of the class head.
    y: Targets,
    /// Labels of the distillation head (another assignment, as a teacher's would be).
    y_dist: Targets,
}

impl Problem {
    fn new(dev: &Cpu) -> Self {
        let one_hot = |label: fn(usize) -> usize| {
            let rows = (0..BATCH)
                .flat_map(|b| (0..CLASSES).map(move |k| if k == label(b) { 1.0 } else { 0.0 }));
            dev.tensor_from_vec(rows.collect(), (BATCH, Const))
        };
        Problem {
            x: dev.sample_normal_like(&(BATCH, Const, Const, Const)),
            y: one_hot(|b| (3 * b + 1) % CLASSES),
            y_dist: one_hot(|b| (7 * b + 4) % CLASSES),
        }
    }

    /// Cross-entropy of the class head, plus that of the distillation head if there is one.
    fn loss<T: Tape<f32, Cpu> + Merge<T>>(
        &self,
        heads: Heads<usize, CLASSES, Cpu, T>,
    ) -> Tensor<Rank0, f32, Cpu, T> {
        let class = cross_entropy(heads.class, self.y.clone());
        match heads.distill {
            Some(dist) => class + cross_entropy(dist, self.y_dist.clone()),
            None => class,
        }
    }

    /// The loss in `mode`. In training mode the dropout and drop-path masks come from the
    /// device's generator, so every evaluation runs on a device seeded alike: the masks are
    /// then fixed and the loss is a smooth function of the parameters.
    fn value<M: ImageClassifier<1, 28, 28, CLASSES, Cpu>>(&self, model: &M, mode: Mode) -> f32 {
        let (model, x) = on_mask_device(model, &self.x);
        self.loss(model.heads(x, mode)).array()
    }
}

/// Seed of the device every forward pass runs on (see [`Problem::value`]).
const MASK_SEED: u64 = 11;

/// `model` and `x` moved to a freshly seeded device.
fn on_mask_device<M: ImageClassifier<1, 28, 28, CLASSES, Cpu>>(
    model: &M,
    x: &Images,
) -> (M, Images) {
    let dev = Cpu::seed_from_u64(MASK_SEED);
    (model.to_device(&dev), x.to_device(&dev))
}

/// Sets entry `index` of the tensor `name` to `value`.
struct SetEntry<'a> {
    name: &'a str,
    index: usize,
    value: f32,
    found: bool,
}

impl TensorVisitor<f32, Cpu> for SetEntry<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (t, name): (&mut Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        if name == self.name {
            let mut values = t.as_vec();
            values[self.index] = self.value;
            t.copy_from(&values);
            self.found = true;
        }
        Ok(None)
    }
}

fn set_entry<M: TensorCollection<f32, Cpu>>(model: &mut M, name: &str, index: usize, value: f32) {
    let mut set = SetEntry {
        name,
        index,
        value,
        found: false,
    };
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut set,
    });
    if let Err(never) = walked {
        match never {}
    }
    assert!(set.found, "no tensor `{name}`");
}

/// `(loss(p + step) - loss(p - step)) / 2 step` for entry `index` of tensor `name`,
/// whose value is `original`.
fn central_difference<M: ImageClassifier<1, 28, 28, CLASSES, Cpu>>(
    model: &mut M,
    problem: &Problem,
    (name, index, original): (&str, usize, f32),
    step: f32,
    mode: Mode,
) -> f32 {
    set_entry(model, name, index, original + step);
    let up = problem.value(model, mode);
    set_entry(model, name, index, original - step);
    let down = problem.value(model, mode);
    set_entry(model, name, index, original);
    // The actual step, after rounding `original ± step` to f32.
    let actual = (original + step) - (original - step);
    (up - down) / actual
}

/// What happened to the sampled entries of one model.
#[derive(Debug, Default)]
struct Outcome {
    checked: usize,
    skipped: usize,
    failures: Vec<String>,
    /// The largest `|analytic - numeric| / max(|analytic|, |numeric|)` among checked entries
    /// whose gradient is above the absolute tolerance.
    worst_relative: f32,
}

fn check<M>(smoothness: Smoothness, mode: Mode) -> Outcome
where
    M: ImageClassifier<1, 28, 28, CLASSES, Cpu> + BuildModule<Cpu, f32>,
{
    let dev = Cpu::seed_from_u64(1);
    let mut model = M::build(&dev);
    let problem = Problem::new(&dev);
    let (masked, x) = on_mask_device(&model, &problem.x);
    let mut grads = problem
        .loss(masked.heads(x.traced(masked.alloc_grads()), mode))
        .backward();
    let trainable = params_with_gradients(&masked, &mut grads);
    assert!(
        !trainable.is_empty(),
        "`{}` has no trainable tensors",
        M::NAME
    );

    let mut rng = StdRng::seed_from_u64(7);
    let mut outcome = Outcome::default();
    for Param {
        name,
        values,
        gradient,
        ..
    } in &trainable
    {
        let analytic = gradient
            .as_deref()
            .expect("a trainable tensor has a gradient");
        let largest =
            (0..analytic.len()).max_by(|&a, &b| analytic[a].abs().total_cmp(&analytic[b].abs()));
        let mut indices: Vec<usize> = largest.into_iter().collect();
        let random = sample(&mut rng, analytic.len(), SAMPLES.min(analytic.len())).into_vec();
        indices.extend(
            random
                .into_iter()
                .filter(|i| Some(*i) != largest)
                .take(SAMPLES - 1),
        );
        for index in indices {
            let entry = (name.as_str(), index, values[index]);
            let numeric = central_difference(&mut model, &problem, entry, EPS, mode);
            if smoothness == Smoothness::Kinked {
                let half = central_difference(&mut model, &problem, entry, EPS / 2.0, mode);
                if (numeric - half).abs() > ABS_TOL + KINK_TOL * numeric.abs().max(half.abs()) {
                    outcome.skipped += 1;
                    continue;
                }
            }
            outcome.checked += 1;
            let analytic = analytic[index];
            let scale = analytic.abs().max(numeric.abs());
            let error = (analytic - numeric).abs();
            if scale > ABS_TOL {
                outcome.worst_relative = outcome.worst_relative.max(error / scale);
            }
            if error > ABS_TOL + REL_TOL * scale {
                outcome.failures.push(format!(
                    "{}.{name}[{index}]: analytic {analytic:.6}, numeric {numeric:.6} ({:.0}% off)",
                    M::NAME,
                    100.0 * error / scale
                ));
            }
        }
    }
    outcome
}

fn assert_gradients_match<M>(smoothness: Smoothness, mode: Mode)
where
    M: ImageClassifier<1, 28, 28, CLASSES, Cpu> + BuildModule<Cpu, f32>,
{
    let outcome = check::<M>(smoothness, mode);
    println!(
        "{}: {} entries checked, {} skipped at kinks, worst relative error {:.1}%",
        M::NAME,
        outcome.checked,
        outcome.skipped,
        100.0 * outcome.worst_relative
    );
    assert!(
        outcome.failures.is_empty(),
        "{} of {} checked gradient entries of `{}` disagree with finite differences:\n{}",
        outcome.failures.len(),
        outcome.checked,
        M::NAME,
        outcome.failures.join("\n")
    );
    let sampled = outcome.checked + outcome.skipped;
    assert!(
        outcome.checked as f64 >= MIN_CHECKED * sampled as f64,
        "only {} of {sampled} sampled entries of `{}` could be checked: the loss is non-smooth at the rest",
        outcome.checked,
        M::NAME
    );
}

#[test]
fn lightvit_gradients_match_finite_differences() {
    assert_gradients_match::<Lightvit<f32, Cpu>>(Smoothness::Smooth, Mode::Eval);
}

#[test]
fn deit_gradients_of_both_heads_match_finite_differences() {
    assert_gradients_match::<Deit<f32, Cpu>>(Smoothness::Smooth, Mode::Eval);
}

#[test]
fn cnn_gradients_match_finite_differences_away_from_relu_and_pooling_kinks() {
    assert_gradients_match::<Cnn<f32, Cpu>>(Smoothness::Kinked, Mode::Eval);
}

#[test]
fn vit_gradients_with_dropout_active_match_finite_differences() {
    // The check means something only if the masks change the loss.
    let dev = Cpu::seed_from_u64(1);
    let (model, problem) = (Vit::<f32, Cpu>::build(&dev), Problem::new(&dev));
    let (train, eval) = (
        problem.value(&model, Mode::Train),
        problem.value(&model, Mode::Eval),
    );
    assert!(
        (train - eval).abs() > 1e-4,
        "dropout inactive: training loss {train}, evaluation loss {eval}"
    );
    assert_gradients_match::<Vit<f32, Cpu>>(Smoothness::Smooth, Mode::Train);
}
