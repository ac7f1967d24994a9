//! A training step gives the same loss and gradients, to the bit, on any number of threads,
//! so a seed's run does not depend on how many cores run it.
//!
//! Every sum that is split over threads is split at fixed points and added up in a fixed
//! order; a rayon `reduce` or `fold` would associate its partial sums wherever its splits
//! happened to fall. The models are run on thread pools of 1, 2 and 3 threads, in training
//! mode (dropout on), with a batch large enough to be split: vit covers the linear layers,
//! LayerNorm, attention and dropout; lightvit the per-head maps; cnn the convolutions
//! and pooling.
mod common;

use common::params_with_gradients;
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::ImageClassifier;
use vit_runtime::models::{Cnn, Lightvit, Vit};
use vit_runtime::nn::{Kernels, Mode};
use vit_runtime::train::loss::cross_entropy;

const CLASSES: usize = 10;
/// A training batch of the specs: 6,400 ViT token rows, many tasks per product and sum.
const BATCH: usize = 128;

/// `f` run on a pool of `threads` threads.
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

/// The loss and every gradient of one training step, as bit patterns, on `threads` threads.
fn step_bits<M>(threads: usize) -> Vec<(String, Vec<u32>)>
where
    M: ImageClassifier<1, 28, 28, CLASSES, Cpu> + BuildModule<Cpu, f32>,
{
    on_threads(threads, || {
        let dev = Cpu::seed_from_u64(5);
        let model = M::build(&dev);
        let x: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Cpu> =
            dev.sample_normal_like(&(BATCH, Const, Const, Const));
        let labels =
            (0..BATCH).flat_map(|b| (0..CLASSES).map(move |k| f32::from(k == b % CLASSES)));
        let y = dev.tensor_from_vec(labels.collect(), (BATCH, Const::<CLASSES>));
        let heads = model.heads(x.traced(model.alloc_grads()), Mode::Train);
        let loss = cross_entropy(heads.class, y);
        let loss_bits = loss.array().to_bits();
        let mut grads = loss.backward();
        let mut bits = vec![("loss".to_string(), vec![loss_bits])];
        for param in params_with_gradients(&model, &mut grads) {
            let gradient = param.gradient.expect("a trainable tensor has a gradient");
            bits.push((param.name, gradient.iter().map(|g| g.to_bits()).collect()));
        }
        bits
    })
}

fn assert_same_on_any_number_of_threads<M>()
where
    M: ImageClassifier<1, 28, 28, CLASSES, Cpu> + BuildModule<Cpu, f32>,
{
    let one = step_bits::<M>(1);
    for threads in [2, 3] {
        let many = step_bits::<M>(threads);
        assert_eq!(one.len(), many.len());
        let differing: Vec<&str> = one
            .iter()
            .zip(&many)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0.as_str())
            .collect();
        assert!(
            differing.is_empty(),
            "`{}`: 1 and {threads} threads differ in {differing:?}",
            M::NAME
        );
    }
}

#[test]
fn vit_training_step_is_the_same_on_any_number_of_threads() {
    assert_same_on_any_number_of_threads::<Vit<f32, Cpu>>();
}

#[test]
fn cnn_training_step_is_the_same_on_any_number_of_threads() {
    assert_same_on_any_number_of_threads::<Cnn<f32, Cpu>>();
}

#[test]
fn lightvit_training_step_is_the_same_on_any_number_of_threads() {
    assert_same_on_any_number_of_threads::<Lightvit<f32, Cpu>>();
}

/// Evaluation logits of a batch of several chunks (`Kernels::map_chunks` runs them side by
/// side), as bit patterns, on `threads` threads; and those of each chunk evaluated alone.
fn eval_bits<M>(threads: usize) -> (Vec<u32>, Vec<u32>)
where
    M: ImageClassifier<1, 28, 28, CLASSES, Cpu> + BuildModule<Cpu, f32>,
{
    on_threads(threads, || {
        let dev = Cpu::seed_from_u64(6);
        let model = M::build(&dev);
        let budget = <Cpu as Kernels>::EVAL_CHUNK_FLOPS.expect("the CPU evaluates in chunks");
        let chunk = (budget / M::SUMMARY.flops) as usize;
        let n = 3 * chunk + chunk / 2;
        let x: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Cpu> =
            dev.sample_normal_like(&(n, Const, Const, Const));
        let all = model.eval_heads(x.clone()).class.as_vec();
        let alone = (0..n)
            .step_by(chunk)
            .flat_map(|start| {
                let images = x.clone().slice((start..(start + chunk).min(n), .., .., ..));
                model.heads(images, Mode::Eval).class.as_vec()
            })
            .collect::<Vec<f32>>();
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        (bits(all), bits(alone))
    })
}

#[test]
fn vit_evaluation_in_parallel_chunks_is_the_same_on_any_number_of_threads() {
    let (one, alone) = eval_bits::<Vit<f32, Cpu>>(1);
    assert_eq!(one, alone, "chunked evaluation differs from chunk-by-chunk");
    for threads in [2, 3] {
        let (many, _) = eval_bits::<Vit<f32, Cpu>>(threads);
        assert_eq!(one, many, "1 and {threads} threads differ");
    }
}
