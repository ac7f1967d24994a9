use super::rules::snake_case;
use super::*;
use crate::diagnostic::Span;
use crate::ir::{CnnLayer, DistillLoss, Feature};

fn model_text(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn checked(name: &str) -> Model {
    let spec = spec::parse(&model_text(name)).unwrap_or_else(|d| panic!("{name}: {}", d.message));
    check(&spec).unwrap_or_else(|d| panic!("{name}: {d:?}"))
}

fn vit(model: &Model) -> &ir::Vit {
    match &model.arch {
        Arch::Vit(vit) => vit,
        Arch::Cnn(_) => panic!("{} is not a ViT", model.name),
    }
}

/// `text` with `from` replaced by `to`, checked; the one error it must give.
fn error_in(text: &str, from: &str, to: &str) -> Diagnostic {
    let mut all = errors_in(text, &[(from, to)]);
    assert_eq!(all.len(), 1, "one error expected: {all:#?}");
    all.remove(0)
}

/// `text` with each `(from, to)` replaced, checked; every error it gives.
fn errors_in(text: &str, edits: &[(&str, &str)]) -> Vec<Diagnostic> {
    let mut edited = text.to_owned();
    for (from, to) in edits {
        let next = edited.replacen(from, to, 1);
        assert_ne!(next, edited, "`{from}` not found");
        edited = next;
    }
    let spec = spec::parse(&edited).unwrap_or_else(|d| panic!("parse: {}", d.message));
    check(&spec).expect_err("should not check")
}

#[test]
fn lightvit_derived_sizes() {
    let m = checked("lightvit");
    let v = vit(&m);
    assert_eq!(
        (v.grid_h, v.grid_w, v.num_patches, v.patch_dim),
        (7, 7, 49, 16)
    );
    assert_eq!(
        (v.embed_dim, v.heads, v.head_dim, v.mlp_hidden),
        (8, 2, 4, 32)
    );
    assert_eq!((v.extra_tokens, v.seq_len), (1, 50));
    assert_eq!(
        (v.qkv, v.positions, v.final_norm),
        (ir::Qkv::PerHead, ir::Positions::Sinusoidal, false)
    );
    assert_eq!(
        m.train.optimizer,
        ir::Optimizer {
            kind: ir::OptimizerKind::Adam,
            lr: 0.005,
            weight_decay: 0.0,
            betas: (0.9, 0.999),
            eps: 1e-8
        }
    );
    assert_eq!(
        m.train.normalize,
        ir::Normalize {
            mean: &[0.0],
            std: &[1.0]
        }
    );
}

#[test]
fn vit_derived_sizes() {
    let m = checked("vit");
    let v = vit(&m);
    assert_eq!(
        (
            v.num_patches,
            v.patch_dim,
            v.head_dim,
            v.mlp_hidden,
            v.seq_len
        ),
        (49, 16, 16, 128, 50)
    );
    assert_eq!(v.distillation, None);
    assert_eq!(
        m.train.schedule,
        ir::Schedule::WarmupCosine {
            warmup_epochs: 1,
            min_lr: 0.0
        }
    );
    assert_eq!(
        m.train.augment,
        ir::Augment {
            random_crop: Some((28, 2)),
            horizontal_flip: true
        }
    );
    assert_eq!(m.train.optimizer.weight_decay, 0.001);
}

#[test]
fn deit_has_a_distillation_token() {
    let m = checked("deit");
    let v = vit(&m);
    assert_eq!((v.extra_tokens, v.seq_len), (2, 51));
    assert_eq!(
        v.distillation,
        Some(ir::Distillation {
            teacher: "cnn".into(),
            loss: DistillLoss::Hard,
            alpha: 0.5
        })
    );
}

#[test]
fn cnn_derived_sizes() {
    let m = checked("cnn");
    let Arch::Cnn(cnn) = &m.arch else {
        panic!("not a CNN")
    };
    let hw: Vec<usize> = cnn
        .layers
        .iter()
        .filter_map(|l| match *l {
            CnnLayer::Conv { out_hw, .. } | CnnLayer::MaxPool { out_hw, .. } => Some(out_hw.0),
            _ => None,
        })
        .collect();
    assert_eq!(hw, [28, 14, 14, 7, 7]);
    assert_eq!(
        cnn.layers[8],
        CnnLayer::Flatten {
            c: 128,
            h: 7,
            w: 7,
            size: 6272
        }
    );
    assert_eq!(
        cnn.layers[9],
        CnnLayer::Linear {
            inp: 6272,
            out: 256
        }
    );
    assert_eq!(
        cnn.layers[2],
        CnnLayer::MaxPool {
            c: 32,
            kernel: 2,
            stride: 2,
            in_hw: (28, 28),
            out_hw: (14, 14)
        }
    );
    assert_eq!(cnn.layers[11], CnnLayer::Dropout(0.5));
    let _ = Feature::Flat(0);
}

#[test]
fn batch_norms_take_the_channels_of_the_map_before_them() {
    let m = checked("cnn_bn");
    let Arch::Cnn(cnn) = &m.arch else {
        panic!("not a CNN")
    };
    let norms: Vec<&CnnLayer> = cnn
        .layers
        .iter()
        .filter(|l| matches!(l, CnnLayer::BatchNorm { .. }))
        .collect();
    assert_eq!(norms.len(), 4);
    assert_eq!(
        *norms[2],
        CnnLayer::BatchNorm {
            c: 64,
            eps: 1e-5,
            momentum: 0.1
        }
    );
}

#[test]
fn batch_norm_errors_point_at_their_key() {
    let text = model_text("cnn_bn");
    let d = error_in(
        &text,
        "batch_norm: { features: 64 }",
        "batch_norm: { features: 32 }",
    );
    assert_eq!(
        d.message,
        "batch_norm `features` (32) does not match the 64 channels coming into it"
    );
    let line = 1 + text
        .lines()
        .position(|l| l.contains("batch_norm: { features: 64 }"))
        .unwrap();
    assert_eq!(d.span.line, line);
    let d = error_in(
        &text,
        "batch_norm: { features: 64 }",
        "batch_norm: { features: 64, momentum: 0 }",
    );
    assert_eq!(
        d.message,
        "`cnn.layers[8].batch_norm.momentum` must be in (0, 1], got 0"
    );
    let d = error_in(
        &text,
        "batch_norm: { features: 64 }",
        "batch_norm: { features: 64, eps: -1 }",
    );
    assert_eq!(
        d.message,
        "`cnn.layers[8].batch_norm.eps` must be greater than 0, got -1"
    );
}

#[test]
fn deit_accepts_cnn_as_teacher() {
    let student_spec = spec::parse(&model_text("deit")).unwrap();
    let student = check(&student_spec).unwrap();
    let teacher_spec = spec::parse(&model_text("cnn")).unwrap();
    let file = SourceFile {
        display: "models/cnn.yaml".into(),
        text: model_text("cnn"),
    };
    let teacher = check_teacher(&student_spec, &student, &teacher_spec, &file).unwrap();
    assert_eq!(teacher, checked("cnn"));
}

#[test]
fn teacher_for_other_classes_is_reported_before_its_recipe() {
    let student_spec = spec::parse(&model_text("deit")).unwrap();
    let student = check(&student_spec).unwrap();
    let text = model_text("cnn")
        .replacen("classes: 10", "classes: 100", 1)
        .replacen("out: 10 }", "out: 100 }", 1);
    let teacher_spec = spec::parse(&text).unwrap();
    let file = SourceFile {
        display: "models/cnn.yaml".into(),
        text,
    };
    let d = check_teacher(&student_spec, &student, &teacher_spec, &file).unwrap_err();
    assert_eq!(
        d.message,
        "teacher `cnn` predicts 100 classes, but this model has 10"
    );
    assert_eq!(d.span, Span::new(22, 28, 3));
}

#[test]
fn invalid_teacher_nests_its_error() {
    let student_spec = spec::parse(&model_text("deit")).unwrap();
    let student = check(&student_spec).unwrap();
    let text = model_text("cnn").replacen("in: 6272", "in: 6000", 1);
    let teacher_spec = spec::parse(&text).unwrap();
    let file = SourceFile {
        display: "models/cnn.yaml".into(),
        text,
    };
    let d = check_teacher(&student_spec, &student, &teacher_spec, &file).unwrap_err();
    assert_eq!(d.message, "teacher spec `cnn` is invalid");
    let cause = d.cause.unwrap();
    assert_eq!(
        cause.diagnostic.message,
        "linear `in` (6000) does not match the 6272 features coming into it"
    );
    assert_eq!(cause.diagnostic.span, Span::new(16, 21, 4));
}

#[test]
fn heads_must_divide_embed_dim() {
    let d = error_in(&model_text("vit"), "heads: 4", "heads: 3");
    assert_eq!(d.message, "heads (3) do not divide embed_dim (64)");
    assert_eq!(d.span, Span::new(10, 10, 1));
    assert_eq!(
        d.help,
        ["choose heads from the divisors of 64: 1, 2, 4, 8, 16, 32, 64"]
    );
}

#[test]
fn patch_must_divide_the_image() {
    let d = error_in(&model_text("vit"), "patch: 4", "patch: 5");
    assert_eq!(d.message, "patch (5) does not divide the image height (28)");
    assert_eq!(
        d.help,
        ["choose patch from the divisors of 28: 1, 2, 4, 7, 14, 28"]
    );
}

#[test]
fn zero_sizes_are_rejected() {
    assert_eq!(
        error_in(&model_text("vit"), "embed_dim: 64", "embed_dim: 0").message,
        "`vit.embed_dim` must be at least 1"
    );
    assert_eq!(
        error_in(
            &model_text("cnn"),
            "kernel: 3, padding",
            "kernel: 0, padding"
        )
        .message,
        "`cnn.layers[0].conv.kernel` must be at least 1"
    );
}

#[test]
fn fractional_mlp_ratio_must_give_a_whole_size() {
    assert_eq!(checked_with("vit", "mlp_ratio: 2", "mlp_ratio: 1.5"), 96);
    let d = error_in(&model_text("vit"), "mlp_ratio: 2", "mlp_ratio: 1.3");
    assert!(
        d.message
            .starts_with("mlp_ratio (1.3) times embed_dim (64) is 83.2"),
        "{}",
        d.message
    );
}

fn checked_with(name: &str, from: &str, to: &str) -> usize {
    let spec = spec::parse(&model_text(name).replacen(from, to, 1)).unwrap();
    vit(&check(&spec).unwrap()).mlp_hidden
}

#[test]
fn norm_eps_defaults_to_pytorchs_and_must_be_positive() {
    assert_eq!(vit(&checked("vit")).norm_eps, 1e-5);
    assert_eq!(vit(&checked("vit_small_patch16_224")).norm_eps, 1e-6);
    let small = model_text("vit_small_patch16_224");
    let d = error_in(&small, "norm_eps: 1.0e-6", "norm_eps: 0");
    assert!(d.message.contains("`vit.norm_eps`"), "{}", d.message);
    assert_eq!(d.span.line, 20);
}

#[test]
fn probabilities_are_in_zero_one() {
    let d = error_in(&model_text("vit"), "  dropout: 0.1", "  dropout: 1.0");
    assert_eq!(
        d.message,
        "`vit.dropout` must be a probability in [0, 1), got 1"
    );
    assert_eq!(
        error_in(&model_text("cnn"), "dropout: 0.5", "dropout: -0.5").span,
        Span::new(18, 16, 4)
    );
}

#[test]
fn distillation_needs_a_class_token() {
    let d = error_in(&model_text("deit"), "pooling: cls", "pooling: mean");
    assert_eq!(d.message, "distillation needs `pooling: cls`");
}

#[test]
fn mean_pooling_has_no_extra_token() {
    let spec =
        spec::parse(&model_text("vit").replacen("pooling: cls", "pooling: mean", 1)).unwrap();
    let m = check(&spec).unwrap();
    assert_eq!((vit(&m).extra_tokens, vit(&m).seq_len), (0, 49));
}

#[test]
fn cnn_shape_errors() {
    let cnn = model_text("cnn");
    let d = error_in(&cnn, "in: 6272", "in: 6000");
    assert_eq!(d.help, ["set `in: 6272`"]);
    assert_eq!(
        d.notes,
        ["they come from the flatten on line 15: 128 x 7 x 7 = 6272"]
    );
    assert_eq!(
        error_in(&cnn, "in: 32, out: 64", "in: 16, out: 64").message,
        "conv `in` (16) does not match the 32 channels coming into it"
    );
    assert_eq!(
        error_in(&cnn, "in: 256, out: 10", "in: 256, out: 20").message,
        "the CNN ends with 20 features, but the model has 10 classes"
    );
    let d = error_in(
        &cnn,
        "in: 64, out: 128, kernel: 3, padding: 1",
        "in: 64, out: 128, kernel: 17, padding: 1",
    );
    assert_eq!(
        d.message,
        "conv kernel (17) is larger than its padded input (9x9)"
    );
    assert_eq!(d.span, Span::new(13, 41, 2));
    let d = error_in(
        &cnn,
        "    - flatten ",
        "    - max_pool: { kernel: 9 }\n    - flatten ",
    );
    assert_eq!(d.message, "pool kernel (9) is larger than its 7x7 input");
    let d = error_in(&cnn, "    - flatten ", "    - relu ");
    assert_eq!(
        d.message,
        "a linear layer needs flat features, but gets a 128x7x7 feature map"
    );
}

#[test]
fn recipe_errors() {
    let vit_text = model_text("vit");
    let d = error_in(&vit_text, "warmup_epochs: 1", "warmup_epochs: 11");
    assert_eq!(
        d.message,
        "warmup_epochs (11) is longer than the training (epochs: 10)"
    );
    let d = error_in(&vit_text, "size: 28", "size: 24");
    assert_eq!(
        d.message,
        "random crop size (24) differs from the 28x28 input"
    );
    let d = error_in(&vit_text, "classes: 10", "classes: 100");
    assert_eq!(
        d.message,
        "`fashion_mnist` has 10 classes, but the model has 100"
    );
    let d = error_in(&vit_text, "channels: 1", "channels: 3");
    assert_eq!(
        d.message,
        "`fashion_mnist` has 1x28x28 images, but the model's input is 3x28x28"
    );
    assert_eq!(d.span, Span::new(22, 12, 13));
    let d = error_in(
        &vit_text,
        "kind: adamw, lr: 0.0005, weight_decay: 0.001",
        "kind: sgd, lr: 0.0005, betas: [0.9, 0.99]",
    );
    assert_eq!(d.message, "`betas` only applies to adam and adamw");
}

#[test]
fn names_must_be_snake_case_identifiers() {
    let d = error_in(&model_text("vit"), "name: vit", "name: LightViT");
    assert_eq!(
        d.message,
        "`name` must be a snake_case identifier, got `LightViT`"
    );
    assert_eq!(d.help, ["did you mean `light_vit`?"]);
    assert_eq!(snake_case("MyModel-2"), "my_model_2");
    assert_eq!(
        error_in(&model_text("vit"), "name: vit", "name: self").message,
        "`name` must be a snake_case identifier, got `self`"
    );
    assert_eq!(camel_case("light_vit_2"), "LightVit2");
    // A multi-byte first character is an error to report, not a panic in the macro.
    let d = error_in(&model_text("vit"), "name: vit", "name: été");
    assert_eq!(
        d.message,
        "`name` must be a snake_case identifier, got `été`"
    );
}

#[test]
fn exactly_one_network() {
    let both = model_text("vit").replacen("train:", "cnn:\n  layers: [relu]\ntrain:", 1);
    let d = check(&spec::parse(&both).unwrap()).unwrap_err().remove(0);
    assert_eq!(
        d.message,
        "a spec has either a `vit:` or a `cnn:` section, not both"
    );
    assert_eq!(d.span.line, 21);
}

#[test]
fn independent_errors_are_reported_together_each_at_its_line() {
    let all = errors_in(
        &model_text("vit"),
        &[
            ("heads: 4", "heads: 5"),
            ("dropout: 0.1", "dropout: 1.5"),
            ("epochs: 10", "epochs: 0"),
            ("lr: 0.0005", "lr: -1"),
        ],
    );
    let found: Vec<(usize, &str)> = all
        .iter()
        .map(|d| (d.span.line, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (10, "heads (5) do not divide embed_dim (64)"),
            (16, "`vit.dropout` must be a probability in [0, 1), got 1.5"),
            (23, "`train.epochs` must be at least 1"),
            (26, "`train.optimizer.lr` must be greater than 0, got -1"),
        ]
    );
}

#[test]
fn an_invalid_input_is_reported_once_not_again_by_what_depends_on_it() {
    // Channels 0 would also make the patch size, the data set's fit and `normalize` wrong;
    // only the cause is reported, next to the unrelated batch size.
    let all = errors_in(
        &model_text("vit"),
        &[
            ("channels: 1", "channels: 0"),
            ("batch_size: 128", "batch_size: 0"),
        ],
    );
    let messages: Vec<&str> = all.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`input.channels` must be at least 1",
            "`train.batch_size` must be at least 1"
        ]
    );
}

#[test]
fn an_invalid_name_is_reported_with_the_network_and_recipe_errors() {
    let all = errors_in(
        &model_text("cnn"),
        &[("name: cnn", "name: Cnn"), ("epochs: 10", "epochs: 0")],
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].span.line, 2);
    assert!(all[1].message.contains("train.epochs"));
}
