//! `batch_norm` against PyTorch's `nn.BatchNorm2d`: the spec
//! `tests/fixtures/batch_norm/bn_net.yaml`, given the weights and running statistics of
//! `bn_net.safetensors` (`bench/pytorch/make_batch_norm_fixtures.py`, float64), must give
//! PyTorch's evaluation- and training-mode logits, move its running statistics as PyTorch's
//! one training-mode forward did, and back-propagate PyTorch's gradients; its running
//! statistics survive a checkpoint. No PyTorch is needed to run this.
mod common;

use common::{file_tensor, params, params_with_gradients};
use std::path::{Path, PathBuf};
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{ImageClassifier, ModelSpec};
use vit_runtime::nn::Mode;
use vit_runtime::train::checkpoint::{self, State};

vit_runtime::model!("tests/fixtures/batch_norm/bn_net.yaml");

const TOL: f32 = 1e-4;

fn fixture() -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/batch_norm/bn_net.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with python3 bench/pytorch/make_batch_norm_fixtures.py)",
            path.display()
        )
    });
    (path, bytes)
}

fn tensor(bytes: &[u8], name: &str) -> Vec<f32> {
    file_tensor(bytes, &format!("fixture.{name}"))
        .unwrap_or_else(|| panic!("fixture tensor {name} is missing"))
        .1
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A batch of the fixture's `(B, 2, 6, 6)` maps.
type Maps = Tensor<(usize, Const<2>, Const<6>, Const<6>), f32, Cpu>;

/// The model with PyTorch's weights and running statistics, the fixture's input, and the
/// fixture file's bytes.
fn loaded() -> (BnNet<f32, Cpu>, Maps, Vec<u8>) {
    let dev = Cpu::seed_from_u64(0);
    let (path, bytes) = fixture();
    let mut model = BnNet::<f32, Cpu>::build(&dev);
    let unused = checkpoint::load_weights(&path, &mut model, "bn_net").unwrap();
    assert!(
        unused.iter().all(|name| name.starts_with("fixture.")),
        "only the fixture's own tensors go unused (PyTorch's num_batches_tracked is \
         known): {unused:?}"
    );
    let x = dev.tensor_from_vec(tensor(&bytes, "input"), (4, Const, Const, Const));
    (model, x, bytes)
}

#[test]
fn evaluation_mode_gives_pytorchs_logits_from_the_running_statistics() {
    let (model, x, bytes) = loaded();
    let logits = model.heads(x, Mode::Eval).class.as_vec();
    let diff = max_diff(&logits, &tensor(&bytes, "eval_logits"));
    println!("bn_net: evaluation logits within {diff:.1e} of PyTorch's");
    assert!(diff < TOL, "evaluation logits differ by {diff}");
}

#[test]
fn training_mode_gives_pytorchs_logits_running_statistics_and_gradients() {
    let (mut model, x, bytes) = loaded();
    let upstream = x
        .device()
        .tensor_from_vec(tensor(&bytes, "upstream"), (4, Const::<3>));
    let heads = model.train_heads(x.traced(model.alloc_grads()));
    let logits = heads.class;
    let diff = max_diff(&logits.as_vec(), &tensor(&bytes, "train_logits"));
    println!("bn_net: training logits within {diff:.1e} of PyTorch's");
    assert!(diff < TOL, "training logits differ by {diff}");

    let running: Vec<_> = params(&model)
        .into_iter()
        .filter(|p| !p.trainable)
        .collect();
    assert_eq!(
        running.len(),
        2 * 2,
        "two running statistics per batch norm"
    );
    for p in running {
        let diff = max_diff(&p.values, &tensor(&bytes, &format!("after.{}", p.name)));
        println!("bn_net: {} after the step within {diff:.1e}", p.name);
        assert!(diff < TOL, "{}: differs from PyTorch's by {diff}", p.name);
    }

    let mut grads = (logits * upstream).sum().backward();
    let trained = params_with_gradients(&model, &mut grads);
    // 2 convs, 2 batch norms and a linear layer, each with a weight and a bias.
    assert_eq!(trained.len(), 5 * 2);
    for p in trained {
        let expected = tensor(&bytes, &format!("grad.{}", p.name));
        let diff = max_diff(&p.gradient.unwrap(), &expected);
        println!("bn_net: gradient of {} within {diff:.1e}", p.name);
        assert!(
            diff < TOL,
            "{}: gradient differs from PyTorch's by {diff}",
            p.name
        );
    }
}

#[test]
fn running_statistics_are_saved_with_the_weights_but_not_trained() {
    let (mut model, x, _) = loaded();
    assert_eq!(
        model.num_trainable_params(),
        BnNet::<f32, Cpu>::SUMMARY.params,
        "SUMMARY counts the batch norms' weight and bias only"
    );
    model.train_heads(x.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let state = State {
        spec: "bn_net".into(),
        epoch: 1,
        step: 1,
        seed: 0,
        classes: Vec::new(),
    };
    checkpoint::save(&path, &model, None, &state, BnNet::<f32, Cpu>::SPEC_YAML).unwrap();
    let mut reloaded = BnNet::<f32, Cpu>::build(&Cpu::seed_from_u64(9));
    checkpoint::load(&path, &mut reloaded, "bn_net", None).unwrap();
    let running = |m: &BnNet<f32, Cpu>| -> Vec<(String, Vec<f32>)> {
        params(m)
            .into_iter()
            .filter(|p| !p.trainable)
            .map(|p| (p.name, p.values))
            .collect()
    };
    assert_eq!(running(&reloaded), running(&model));
    assert_eq!(running(&model).len(), 4);
    assert_eq!(
        reloaded.heads(x.clone(), Mode::Eval).class.as_vec(),
        model.heads(x, Mode::Eval).class.as_vec()
    );
}
