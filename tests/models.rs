//! End-to-end checks of the four generated models (`models/*.yaml`): sizes against
//! PyTorch, gradient flow, attention maps, DeiT inference, reproducible init, and
//! timm-compatible checkpoints.
mod common;

use common::{params, params_with_gradients};
use vit_runtime::dfdx::nn::tensor_collection::TensorCollection;
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{ImageClassifier, ModelSpec};
use vit_runtime::models::{Cnn, CnnBn, Deit, Lightvit, Vit};
use vit_runtime::nn::Mode;

const CLASSES: usize = 10;
type Image<const B: usize> = Tensor<Rank4<B, 1, 28, 28>, f32, Cpu>;

fn build<M: BuildModule<Cpu, f32>>(seed: u64) -> M {
    M::build(&Cpu::seed_from_u64(seed))
}

// (a) Trainable parameters, counted as PyTorch's `sum(p.numel() for p in m.parameters())`.
//
// lightvit (patches tokenizer, d 8, 2 blocks, 2 heads of 4, per-head qkv, mlp 32, sinusoidal
// positions = a buffer, no final norm):
//   linear mapper 16*8+8 = 136, cls 8,
//   2 blocks x (2 LN 2*(8+8) = 32 + q, k, v: 3 x 2 heads x (4*4+4) = 120
//               + fc1 8*32+32 = 288 + fc2 32*8+8 = 264) = 2 x 704 = 1408,
//   head 8*10+10 = 90                                        -> 136+8+1408+90 = 1,642
// vit (conv tokenizer, d 64, 6 blocks, 4 heads, fused qkv, mlp 128, learned positions, 50 tokens):
//   patch conv 16*64+64 = 1088, cls 64, pos 50*64 = 3200,
//   6 blocks x (2 LN 256 + qkv 64*192+192 = 12480 + proj 64*64+64 = 4160
//               + fc1 64*128+128 = 8320 + fc2 128*64+64 = 8256) = 6 x 33472 = 200832,
//   final norm 128, head 64*10+10 = 650                       -> 205,962
// deit = vit + dist token 64 + one more position 64 (51 tokens) + head_dist 650 -> 206,740
// cnn: conv 1->32 k3: 1*32*9+32 = 320, conv 32->64: 32*64*9+64 = 18496,
//   conv 64->128: 64*128*9+128 = 73856, linear 6272->256: 6272*256+256 = 1605888,
//   linear 256->10: 2570                                      -> 1,701,130
// cnn_bn: convs 1->32, 32->32, 32->64, 64->64 (k3): 320 + 9248 + 18496 + 36928 = 64,992,
//   4 batch norms, weight and bias: 2*(32+32+64+64) = 384 (running statistics are buffers),
//   linear 3136->256: 803,072, linear 256->10: 2570           -> 871,018
#[test]
fn parameter_counts_equal_pytorchs_for_the_same_architectures() {
    fn check<M: BuildModule<Cpu, f32> + TensorCollection<f32, Cpu> + ModelSpec>(expected: usize) {
        let model: M = build(0);
        assert_eq!(
            model.num_trainable_params(),
            expected,
            "{}: num_trainable_params",
            M::NAME
        );
        assert_eq!(M::SUMMARY.params, expected, "{}: SUMMARY.params", M::NAME);
    }
    check::<Lightvit<f32, Cpu>>(1_642);
    check::<Vit<f32, Cpu>>(205_962);
    check::<Deit<f32, Cpu>>(206_740);
    check::<Cnn<f32, Cpu>>(1_701_130);
    check::<CnnBn<f32, Cpu>>(871_018);
}

#[test]
fn lightvit_sinusoidal_positions_are_saved_but_not_trained() {
    let pos = params(&build::<Lightvit<f32, Cpu>>(0))
        .into_iter()
        .find(|p| p.name == "pos_embed")
        .unwrap();
    assert!(!pos.trainable);
    assert_eq!(pos.shape, [1, 50, 8]);
    assert_eq!(
        pos.values,
        vit_runtime::nn::positions::sinusoidal_table(50, 8)
    );
}

/// Trainable tensors left with an all-zero gradient by one training step on random data.
fn untrained_params<M: ImageClassifier<1, 28, 28, CLASSES, Cpu>>(model: &M) -> Vec<String> {
    const B: usize = 4;
    let dev = Cpu::seed_from_u64(40);
    let x: Image<B> = dev.sample_normal();
    let labels: Tensor<Rank1<B>, f32, Cpu> = dev.sample_uniform();
    let mut one_hot = vec![0.0f32; B * CLASSES];
    for (i, u) in labels.as_vec().into_iter().enumerate() {
        one_hot[i * CLASSES + ((u * CLASSES as f32) as usize).min(CLASSES - 1)] = 1.0;
    }
    let targets = dev.tensor_from_vec(one_hot, (Const::<B>, Const::<CLASSES>));
    let heads = model.heads(x.traced(model.alloc_grads()), Mode::Train);
    let mut loss = cross_entropy_with_logits_loss(heads.class, targets.clone());
    if let Some(distill) = heads.distill {
        loss = loss + cross_entropy_with_logits_loss(distill, targets);
    }
    let mut grads = loss.backward();
    params_with_gradients(model, &mut grads)
        .into_iter()
        .filter(|p| p.gradient.iter().flatten().all(|&g| g == 0.0))
        .map(|p| p.name)
        .collect()
}

#[test]
fn lightvit_backward_reaches_every_trainable_parameter() {
    assert_eq!(
        untrained_params(&build::<Lightvit<f32, Cpu>>(1)),
        Vec::<String>::new()
    );
}

#[test]
fn vit_backward_reaches_every_trainable_parameter() {
    assert_eq!(
        untrained_params(&build::<Vit<f32, Cpu>>(1)),
        Vec::<String>::new()
    );
}

#[test]
fn deit_backward_through_both_heads_reaches_every_trainable_parameter() {
    assert_eq!(
        untrained_params(&build::<Deit<f32, Cpu>>(1)),
        Vec::<String>::new()
    );
}

#[test]
fn cnn_backward_reaches_every_trainable_parameter() {
    assert_eq!(
        untrained_params(&build::<Cnn<f32, Cpu>>(1)),
        Vec::<String>::new()
    );
}

/// (c) `forward_with_attention`: logits as `forward`, maps `(B, blocks, heads, T, T)` of softmax rows.
macro_rules! check_attention_maps {
    ($model:ty, $blocks:expr, $heads:expr, $tokens:expr) => {{
        let model: $model = build(2);
        let x: Image<2> = Cpu::seed_from_u64(41).sample_normal();
        let (logits, maps) = model.forward_with_attention(x.clone());
        assert_eq!(
            maps.shape().concrete(),
            [2, $blocks, $heads, $tokens, $tokens]
        );
        assert_eq!(logits.as_vec(), model.forward(x.clone()).as_vec());
        let maps = maps.as_vec();
        for (r, row) in maps.chunks($tokens).enumerate() {
            assert!(
                row.iter().all(|&w| w >= 0.0),
                "row {r} has a negative weight"
            );
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() <= 1e-5, "row {r} sums to {sum}");
        }
        let record = model
            .attention(x.reshape_like(&(2usize, Const, Const, Const)))
            .expect("a ViT has attention");
        assert_eq!(
            (record.batch, record.blocks, record.heads, record.tokens),
            (2, $blocks, $heads, $tokens)
        );
        assert_eq!(record.data, maps);
    }};
}

#[test]
fn lightvit_attention_maps_are_2_blocks_of_2_heads_over_50_tokens() {
    check_attention_maps!(Lightvit<f32, Cpu>, 2, 2, 50);
}

#[test]
fn vit_attention_maps_are_6_blocks_of_4_heads_over_50_tokens() {
    check_attention_maps!(Vit<f32, Cpu>, 6, 4, 50);
}

#[test]
fn deit_attention_maps_are_6_blocks_of_4_heads_over_51_tokens() {
    check_attention_maps!(Deit<f32, Cpu>, 6, 4, 51);
}

/// Rollout (`vit_runtime::inspect`) of a generated model's maps: every setting gives a joint
/// matrix whose rows sum to 1, and a class-token map over exactly the 7x7 patch grid (after
/// the class token, and DeiT's distillation token).
macro_rules! check_rollout {
    ($model:ty, $prefix:expr) => {{
        use vit_runtime::inspect::{self, BlockSpan, Fusion, View};
        let model: $model = build(3);
        let x: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Cpu> =
            Cpu::seed_from_u64(42).sample_normal_like(&(2usize, Const, Const, Const));
        let record = model.attention(x).expect("a ViT has attention");
        assert_eq!((record.prefix_tokens, record.grid), ($prefix, (7, 7)));
        let dims = inspect::dims(&record);
        let views = View::columns(
            &Fusion::ALL,
            &[0.0, 0.9],
            &[BlockSpan::ALL, "1..".parse().unwrap()],
            &["last:0".parse().unwrap(), "0:min".parse().unwrap()],
        );
        for image in record.data.chunks(dims.image_len()) {
            for view in &views {
                let joint = view.matrix(image, dims).unwrap();
                assert_eq!(joint.len(), dims.tokens * dims.tokens);
                let raw_min = matches!(view, View::Raw(r) if r.head == inspect::Head::Fused(Fusion::Min));
                for (r, row) in joint.chunks(dims.tokens).enumerate() {
                    let sum: f32 = row.iter().sum();
                    assert!(row.iter().all(|&w| w >= 0.0), "{view:?} row {r}");
                    // The element-wise min of softmax rows is not a distribution.
                    if !raw_min {
                        assert!((sum - 1.0).abs() <= 1e-4, "{view:?} row {r} sums to {sum}");
                    }
                }
            }
        }
        let maps = inspect::class_maps(&record, &views).unwrap();
        assert_eq!(maps.len(), 2 * views.len() * 49);
    }};
}

#[test]
fn lightvit_rollout_rows_stay_stochastic_and_map_the_7x7_grid() {
    check_rollout!(Lightvit<f32, Cpu>, 1);
}

#[test]
fn deit_rollout_skips_both_prefix_tokens_and_maps_the_7x7_grid() {
    check_rollout!(Deit<f32, Cpu>, 2);
}

#[test]
fn cnn_has_no_attention_record() {
    let model: Cnn<f32, Cpu> = build(2);
    let x: Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, Cpu> =
        Cpu::seed_from_u64(41).sample_normal_like(&(2usize, Const, Const, Const));
    assert!(model.attention(x).is_none());
}

// (d) DeiT inference averages its class and distillation heads.
#[test]
fn deit_forward_is_the_mean_of_its_class_and_distillation_heads_in_eval() {
    let model: Deit<f32, Cpu> = build(3);
    let x: Image<3> = Cpu::seed_from_u64(42).sample_normal();
    let heads = model.heads(x.clone(), Mode::Eval);
    let class = heads.class.as_vec();
    let distill = heads
        .distill
        .expect("deit has a distillation head")
        .as_vec();
    assert_ne!(
        class, distill,
        "the two heads are distinct layers, so they disagree"
    );
    let logits = model.forward(x).as_vec();
    for (i, ((c, d), y)) in class.iter().zip(&distill).zip(&logits).enumerate() {
        assert!(
            ((c + d) / 2.0 - y).abs() <= 1e-5,
            "logit {i}: {y}, heads {c} and {d}"
        );
    }
}

#[test]
fn eval_mode_is_deterministic_despite_dropout() {
    let model: Vit<f32, Cpu> = build(3);
    let x: Image<2> = Cpu::seed_from_u64(43).sample_normal();
    assert_eq!(model.forward(x.clone()).as_vec(), model.forward(x).as_vec());
}

// (e) Initialisation follows the device seed.
fn check_init_follows_seed<M: BuildModule<Cpu, f32> + TensorCollection<f32, Cpu> + ModelSpec>() {
    let (a, again, other) = (
        params(&build::<M>(5)),
        params(&build::<M>(5)),
        params(&build::<M>(6)),
    );
    assert_eq!(a, again, "{}: same seed, different weights", M::NAME);
    for (p, q) in a.iter().zip(&other) {
        let random = p.trainable && p.values.iter().any(|&v| v != p.values[0]);
        if random {
            assert_ne!(
                p.values,
                q.values,
                "{}: {} is the same under seeds 5 and 6",
                M::NAME,
                p.name
            );
        }
    }
}

#[test]
fn same_seed_builds_identical_weights_and_another_seed_different_ones() {
    check_init_follows_seed::<Lightvit<f32, Cpu>>();
    check_init_follows_seed::<Vit<f32, Cpu>>();
    check_init_follows_seed::<Deit<f32, Cpu>>();
    check_init_follows_seed::<Cnn<f32, Cpu>>();
}

#[test]
fn learned_tokens_and_positions_start_as_truncated_normal_with_the_specs_std() {
    for p in params(&build::<Vit<f32, Cpu>>(7)) {
        if ["cls_token", "pos_embed"].contains(&p.name.as_str()) {
            // timm's bounds are +-2 absolute: at std 0.02 nothing is cut, so values
            // beyond 2 std (about 5% of them) must occur.
            assert!(
                p.values.iter().all(|v| v.abs() <= 2.0),
                "{} exceeds timm's bounds",
                p.name
            );
            let n = p.values.len() as f64;
            let mean = p.values.iter().map(|&v| v as f64).sum::<f64>() / n;
            let std = (p
                .values
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / n)
                .sqrt();
            assert!((0.016..0.024).contains(&std), "{}: std {std}", p.name);
            if p.name == "pos_embed" {
                let beyond = p.values.iter().filter(|v| v.abs() > 0.04).count() as f64 / n;
                assert!(
                    (0.02..0.08).contains(&beyond),
                    "{}: {beyond} beyond 2 std",
                    p.name
                );
            }
        }
    }
}

// (f) Checkpoints: timm's names and PyTorch's shapes, and an exact round trip.

/// Saves `model`, returns the `(name, shape)` of every tensor in the file, and checks that
/// loading the file into a differently seeded model restores every tensor exactly.
fn save_and_reload<M: BuildModule<Cpu, f32> + TensorCollection<f32, Cpu>>(
    model: &M,
) -> Vec<(String, Vec<usize>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save_safetensors(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut saved: Vec<(String, Vec<usize>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect();
    saved.sort();

    let mut loaded: M = build(99);
    assert_ne!(
        params(&loaded),
        params(model),
        "the target must start out different"
    );
    loaded.load_safetensors(&path).unwrap();
    assert_eq!(params(&loaded), params(model), "load(save(model)) != model");
    saved
}

fn assert_saved(saved: &[(String, Vec<usize>)], expected: &[(&str, &[usize])]) {
    for (name, shape) in expected {
        let found = saved.iter().find(|(n, _)| n == name);
        assert_eq!(
            found.map(|(_, s)| s.as_slice()),
            Some(*shape),
            "{name} in {saved:?}"
        );
    }
}

#[test]
fn vit_checkpoint_uses_timm_names_and_shapes_and_round_trips() {
    let model: Vit<f32, Cpu> = build(8);
    let saved = save_and_reload(&model);
    assert_saved(
        &saved,
        &[
            ("cls_token", &[1, 1, 64]),
            ("pos_embed", &[1, 50, 64]),
            ("patch_embed.proj.weight", &[64, 1, 4, 4]),
            ("patch_embed.proj.bias", &[64]),
            ("blocks.0.norm1.weight", &[64]),
            ("blocks.0.attn.qkv.weight", &[192, 64]),
            ("blocks.0.attn.proj.weight", &[64, 64]),
            ("blocks.0.norm2.bias", &[64]),
            ("blocks.0.mlp.fc1.weight", &[128, 64]),
            ("blocks.5.mlp.fc2.weight", &[64, 128]),
            ("norm.weight", &[64]),
            ("head.weight", &[10, 64]),
            ("head.bias", &[10]),
        ],
    );
    // Nothing but the parameters: 4 top-level + 6 x 12 per block + norm 2 + head 2.
    assert_eq!(saved.len(), 4 + 6 * 12 + 2 + 2, "{saved:?}");
}

#[test]
fn deit_checkpoint_adds_timms_distillation_token_and_head() {
    let model: Deit<f32, Cpu> = build(8);
    let saved = save_and_reload(&model);
    assert_saved(
        &saved,
        &[
            ("cls_token", &[1, 1, 64]),
            ("dist_token", &[1, 1, 64]),
            ("pos_embed", &[1, 51, 64]),
            ("blocks.5.attn.qkv.weight", &[192, 64]),
            ("head.weight", &[10, 64]),
            ("head_dist.weight", &[10, 64]),
            ("head_dist.bias", &[10]),
        ],
    );
}

#[test]
fn cnn_checkpoint_names_layers_like_a_pytorch_sequential() {
    let model: Cnn<f32, Cpu> = build(8);
    let saved = save_and_reload(&model);
    let expected: &[(&str, &[usize])] = &[
        ("layers.0.weight", &[32, 1, 3, 3]),
        ("layers.0.bias", &[32]),
        ("layers.3.weight", &[64, 32, 3, 3]),
        ("layers.6.weight", &[128, 64, 3, 3]),
        ("layers.9.weight", &[256, 6272]),
        ("layers.12.weight", &[10, 256]),
        ("layers.12.bias", &[10]),
    ];
    assert_saved(&saved, expected);
    assert_eq!(saved.len(), 10, "{saved:?}");
}

#[test]
fn lightvit_checkpoint_round_trips_including_its_fixed_positions() {
    let model: Lightvit<f32, Cpu> = build(8);
    let saved = save_and_reload(&model);
    assert_saved(
        &saved,
        &[
            ("patch_embed.proj.weight", &[8, 16]),
            ("pos_embed", &[1, 50, 8]),
            ("blocks.1.attn.q.weight", &[2, 4, 4]),
            ("blocks.1.attn.v.bias", &[2, 4]),
            ("head.weight", &[10, 8]),
        ],
    );
}
