//! `--adapt`: weights for one size of ViT loaded into another as timm loads them.
//!
//! `bench/pytorch/make_adapt_fixtures.py` made a small ViT with timm (image 32, patch 8, 3
//! channels), gave it random weights, and let timm adapt them to two other models: `small`
//! (image 24, patch 4, 1 channel: a 6x6 grid from 4x4, 4x4 kernels from 8x8) and `wide`
//! (image 48, patch 12, 2 channels: the same grid, 12x12 kernels). vit-rs must adapt them
//! to timm's tensors within 1e-5, and the adapted models must give timm's logits. No
//! PyTorch is needed to run this.
mod common;

use std::path::{Path, PathBuf};
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::ImageClassifier;
use vit_runtime::train::checkpoint::{self, CheckpointError};

vit_runtime::model!("tests/fixtures/adapt/adapt_source.yaml");
vit_runtime::model!("tests/fixtures/adapt/adapt_small.yaml");
vit_runtime::model!("tests/fixtures/adapt/adapt_wide.yaml");
vit_runtime::model!("tests/fixtures/adapt/adapt_new_head.yaml");

const TOL: f32 = 1e-5;
const LOGITS_TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/adapt")
        .join(format!("{name}.safetensors"))
}

/// `(shape, values)` of the tensor `name` of a fixture file.
fn tensor(file: &str, name: &str) -> (Vec<usize>, Vec<f32>) {
    let path = fixture(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with python3 bench/pytorch/make_adapt_fixtures.py)",
            path.display()
        )
    });
    common::file_tensor(&bytes, name).unwrap_or_else(|| panic!("{name} is missing from {file}"))
}

fn param<M: TensorCollection<f32, Cpu>>(model: &M, name: &str) -> common::Param {
    common::params(model)
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("the model has no tensor {name}"))
}

fn max_abs_diff(what: &str, actual: &common::Param, expected: &(Vec<usize>, Vec<f32>)) -> f32 {
    assert_eq!(actual.shape, expected.0, "{what}: shape");
    let diff = actual
        .values
        .iter()
        .zip(&expected.1)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{what}: max abs diff {diff:.2e}");
    assert!(diff.is_finite(), "{what}: non-finite");
    diff
}

/// Loads the source weights into `M` with adaptation and checks the adapted tensors and
/// the logits against timm's; returns the adaptations' tensor names.
fn adapts_as_timm<M, const C: usize, const S: usize>(target: &str) -> Vec<String>
where
    M: ImageClassifier<C, S, S, 5, Cpu>,
{
    let mut model = M::build(&Cpu::seed_from_u64(0));
    let adapted = checkpoint::load_weights_adapted(&fixture("source"), &mut model, M::NAME, (S, S))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(adapted.unused, Vec::<String>::new());
    for name in ["pos_embed", "patch_embed.proj.weight"] {
        let diff = max_abs_diff(
            &format!("{target} {name}"),
            &param(&model, name),
            &tensor(target, name),
        );
        assert!(diff <= TOL, "{target} {name}: {diff:e} > {TOL:e}");
    }
    let (shape, input) = tensor(target, "fixture.input");
    let images: Tensor<(usize, Const<C>, Const<S>, Const<S>), f32, Cpu> =
        Cpu::default().tensor_from_vec(input, (shape[0], Const, Const, Const));
    let logits = model.predict(images).as_vec();
    let (_, expected) = tensor(target, "fixture.logits");
    let diff = logits
        .iter()
        .zip(&expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{target} logits: max abs diff {diff:.2e}");
    assert!(
        diff <= LOGITS_TOL,
        "{target} logits: {diff:e} > {LOGITS_TOL:e}"
    );
    adapted
        .adaptations
        .iter()
        .map(|a| a.tensor.clone())
        .collect()
}

#[test]
fn positions_kernels_and_channels_adapt_as_in_timm_for_a_finer_grid_and_one_channel() {
    let adapted = adapts_as_timm::<AdaptSmall<f32, Cpu>, 1, 24>("small");
    assert_eq!(adapted, ["patch_embed.proj.weight", "pos_embed"]);
}

#[test]
fn larger_kernels_and_two_channels_adapt_as_in_timm_and_the_same_grid_keeps_its_positions() {
    let adapted = adapts_as_timm::<AdaptWide<f32, Cpu>, 2, 48>("wide");
    assert_eq!(adapted, ["patch_embed.proj.weight"]);
}

#[test]
fn a_head_for_other_classes_stays_fresh_and_everything_else_loads_as_it_is() {
    let dev = Cpu::seed_from_u64(3);
    let mut model = AdaptNewHead::<f32, Cpu>::build(&dev);
    let fresh = common::params(&model);
    let adapted = checkpoint::load_weights_adapted(
        &fixture("source"),
        &mut model,
        "adapt_new_head",
        (32, 32),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<String> = adapted.adaptations.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        lines,
        [
            "head.weight: [5, 16] -> [7, 16], a fresh head: 5 classes in the file, 7 in the model",
            "head.bias: [5] -> [7], a fresh head: 5 classes in the file, 7 in the model",
        ]
    );
    let mut source = AdaptSource::<f32, Cpu>::build(&dev);
    checkpoint::load_weights(&fixture("source"), &mut source, "adapt_source").unwrap();
    let source = common::params(&source);
    for (after, before) in common::params(&model).iter().zip(&fresh) {
        if after.name.starts_with("head.") {
            assert_eq!(after, before, "{} is the model's own", after.name);
        } else {
            let loaded = source.iter().find(|p| p.name == after.name).unwrap();
            assert_eq!(after, loaded, "{} is the file's", after.name);
        }
    }
}

#[test]
fn without_adapting_another_size_is_an_error_naming_the_tensor_and_the_model_is_unchanged() {
    let mut model = AdaptSmall::<f32, Cpu>::build(&Cpu::seed_from_u64(0));
    let before = common::params(&model);
    let err = checkpoint::load_weights(&fixture("source"), &mut model, "adapt_small").unwrap_err();
    match &err {
        CheckpointError::Mismatch {
            tensor, problem, ..
        } => {
            assert_eq!(tensor, "patch_embed.proj.weight");
            assert!(
                problem.contains("[16, 3, 8, 8]") && problem.contains("[16, 1, 4, 4]"),
                "{problem}"
            );
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    assert_eq!(common::params(&model), before);
}

#[test]
fn what_cannot_be_adapted_is_an_error_naming_the_tensor() {
    // Positions that are not the class token's plus a square grid have no grid to resample.
    let dir = std::env::temp_dir().join(format!("vit-rs-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("odd.safetensors");
    let (_, values) = tensor("source", "pos_embed");
    let odd = &values[..16 * 15]; // 15 positions: 1 token + 14, not a square grid
    let bytes: Vec<u8> = odd.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = ::safetensors::tensor::TensorView::new(
        ::safetensors::tensor::Dtype::F32,
        vec![1, 15, 16],
        &bytes,
    )
    .unwrap();
    std::fs::write(
        &path,
        ::safetensors::tensor::serialize([("pos_embed", view)], &None).unwrap(),
    )
    .unwrap();
    let mut model = AdaptSmall::<f32, Cpu>::build(&Cpu::seed_from_u64(0));
    let err = checkpoint::load_weights_adapted(&path, &mut model, "adapt_small", (24, 24))
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("tensor `pos_embed` has 15 positions in the file"),
        "{err}"
    );
}
