//! The `vit-runtime` CLI end to end, on small subsets of the real data in `data/`:
//! it learns, a seed reproduces a run, a killed run resumes to the same log and weights,
//! a diverging run stops with its last good checkpoint intact, and bad checkpoints,
//! model names and flags are clear errors.
//!
//! Timings (test profile, 2 cores shared with a training job): the learning run takes
//! ~30 s alone, ~60 s beside the other tests, which take a few seconds each.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use tempfile::TempDir;

mod support;
use support::*;

#[test]
fn lightvit_learns_mnist_on_a_subset() {
    // The course's LightViT (1,642 parameters) learns slowly: with the recipe's batch of
    // 128, 2 epochs of 6000 images (94 steps) reach only ~23%. Batches of 16 give it 2250
    // steps (36,000 images): seed 0 reaches 70.4% test accuracy (seed 1: 62.5%), chance is 10%.
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("lightvit");
    let args = [
        "--epochs",
        "3",
        "--limit-train",
        "12000",
        "--limit-test",
        "1000",
        "--batch-size",
        "16",
        "--seed",
        "0",
    ];
    let started = Instant::now();
    let stdout = succeed(&mut train("lightvit", &out, &args));
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let epochs: Vec<Value> = records(&out).into_iter().filter(is_epoch).collect();
    assert_eq!(
        epochs.len(),
        3,
        "one epoch record per epoch:\n{epochs:#?}\n{stdout}"
    );
    let losses: Vec<f64> = epochs.iter().map(|r| number(r, "loss")).collect();
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "training loss should fall every epoch: {losses:?}"
    );
    let accuracy = number(&epochs[2], "test_acc");
    println!("final test accuracy {:.1}%", 100.0 * accuracy);
    assert!(
        accuracy >= 0.5,
        "final test accuracy {:.1}% is not well above chance (10%)",
        100.0 * accuracy
    );
    assert!(out.join("checkpoint.safetensors").exists());
}

#[test]
fn same_seed_gives_the_same_metrics_log() {
    let tmp = TempDir::new().unwrap();
    let run = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let args = [
            "--limit-train",
            "1000",
            "--limit-test",
            "200",
            "--epochs",
            "2",
            "--log-every",
            "2",
            "--seed",
            seed,
        ];
        succeed(&mut train("lightvit", &out, &args));
        untimed_log(&out)
    };
    let first = run("first", "7");
    let again = run("again", "7");
    let other = run("other", "8");

    assert!(
        first.iter().any(|r| r["kind"] == "step"),
        "--log-every 2 writes step records: {first:#?}"
    );
    assert_eq!(
        first.iter().filter(|r| is_epoch(r)).count(),
        2,
        "{first:#?}"
    );
    assert_eq!(
        first, again,
        "two runs with seed 7 logged different metrics"
    );
    let losses = |log: &[Value]| log.iter().map(|r| number(r, "loss")).collect::<Vec<_>>();
    assert_eq!(
        first.len(),
        other.len(),
        "the seed should not change the number of records"
    );
    for (a, b) in losses(&first).iter().zip(losses(&other)) {
        assert_ne!(
            *a, b,
            "seeds 7 and 8 gave the same loss {a}: {first:#?}\n{other:#?}"
        );
    }
}

#[test]
fn killed_run_resumes_to_the_same_metrics() {
    let tmp = TempDir::new().unwrap();
    let args = [
        "--limit-train",
        "3000",
        "--limit-test",
        "500",
        "--epochs",
        "3",
        "--log-every",
        "1",
        "--seed",
        "3",
    ];
    let whole = tmp.path().join("whole");
    succeed(&mut train("lightvit", &whole, &args));

    let killed = tmp.path().join("killed");
    let mut child = train("lightvit", &killed, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&killed, &mut child, |log| {
        log.iter().any(|r| is_epoch(r) && r["epoch"] == 1)
            && log.iter().any(|r| r["kind"] == "step" && r["epoch"] == 2)
    });
    child.kill().expect("SIGKILL the run"); // Child::kill is SIGKILL on Unix: no cleanup runs.
    child.wait().unwrap();
    let at_kill = records(&killed);
    assert!(
        !at_kill.iter().any(|r| is_epoch(r) && r["epoch"] == 2),
        "the run was killed only after epoch 2 had finished; the test needs a kill mid-epoch"
    );

    let resume: Vec<&str> = args.iter().copied().chain(["--resume"]).collect();
    let stdout = succeed(&mut train("lightvit", &killed, &resume));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("resuming") && l.contains("after epoch 1")),
        "the resumed run should continue after epoch 1:\n{stdout}"
    );
    assert!(
        !stdout.contains("epoch 1/3"),
        "the resumed run redid epoch 1:\n{stdout}"
    );

    let (expected, resumed) = (untimed_log(&whole), untimed_log(&killed));
    let epochs = |log: &[Value]| {
        log.iter()
            .filter(|r| is_epoch(r))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        epochs(&resumed),
        epochs(&expected),
        "epoch records differ after the resume"
    );
    assert_eq!(
        resumed, expected,
        "the resumed log (step records included) differs from the uninterrupted one"
    );
    assert!(
        tensors(&killed.join("checkpoint.safetensors"))
            == tensors(&whole.join("checkpoint.safetensors")),
        "the resumed run's final weights or optimiser state differ from the uninterrupted run's"
    );
}

#[test]
fn nan_loss_stops_and_keeps_the_last_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("run");
    let args = [
        "--limit-train",
        "1000",
        "--limit-test",
        "200",
        "--log-every",
        "0",
    ];
    let first: Vec<&str> = args.iter().copied().chain(["--epochs", "1"]).collect();
    succeed(&mut train("lightvit", &out, &first));
    let checkpoint = out.join("checkpoint.safetensors");
    let before = std::fs::read(&checkpoint).unwrap();

    // Adam moves every weight by ~lr on its first step: 1e30 overflows the next forward pass.
    let diverge: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--resume", "--epochs", "2", "--lr", "1e30"])
        .collect();
    let stderr = fail(&mut train("lightvit", &out, &diverge));
    assert!(
        stderr.contains("loss became"),
        "stderr should say the loss became non-finite:\n{stderr}"
    );
    assert!(stderr.contains("at epoch 2"), "{stderr}");
    assert!(stderr.contains("last good checkpoint"), "{stderr}");
    assert!(
        std::fs::read(&checkpoint).unwrap() == before,
        "the checkpoint of epoch 1 was changed"
    );
    assert!(
        !records(&out).iter().any(|r| is_epoch(r) && r["epoch"] == 2),
        "a diverged epoch was logged"
    );
}

#[test]
fn checkpoint_of_another_spec_is_rejected_naming_the_tensor() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("lightvit");
    succeed(&mut train(
        "lightvit",
        &out,
        &[
            "--limit-train",
            "500",
            "--limit-test",
            "100",
            "--epochs",
            "1",
        ],
    ));
    let checkpoint = out.join("checkpoint.safetensors");

    let stderr = fail(&mut eval("vit", &checkpoint));
    for part in [
        "tensor `patch_embed.proj.weight`",
        "model `vit`",
        "spec `lightvit`",
    ] {
        assert!(
            stderr.contains(part),
            "stderr should mention {part}:\n{stderr}"
        );
    }
    succeed(&mut eval("lightvit", &checkpoint));

    let bytes = std::fs::read(&checkpoint).unwrap();
    let broken = [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("header_only", bytes[..100].to_vec()),
        ("garbage", b"not a checkpoint at all\n".to_vec()),
        ("empty", Vec::new()),
    ];
    for (name, content) in broken {
        let path = tmp.path().join(format!("{name}.safetensors"));
        std::fs::write(&path, content).unwrap();
        let stderr = fail(&mut eval("lightvit", &path));
        assert!(
            stderr.contains(&*path.to_string_lossy()),
            "the error should name the file:\n{stderr}"
        );
    }
}

#[test]
fn eval_on_the_training_split_augmented_as_another_recipe() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("lightvit");
    let args = [
        "--limit-train",
        "2000",
        "--limit-test",
        "100",
        "--epochs",
        "1",
    ];
    succeed(&mut train("lightvit", &out, &args));
    let checkpoint = out.join("checkpoint.safetensors");
    let on_train = |extra: &[&str]| {
        let mut command = eval("lightvit", &checkpoint);
        command.args(["--split", "train"]).args(extra);
        succeed(&mut command)
    };

    let clean = on_train(&[]);
    assert!(clean.contains("on the training split:"), "{clean}");
    assert!(clean.contains("of 100 images"), "{clean}");
    // `vit` trains on random crops and flips; lightvit's own recipe has none.
    let augmented = on_train(&["--augment-as", "vit"]);
    assert!(
        augmented.contains("augmented as `vit` augments its training batches"),
        "{augmented}"
    );
    assert!(augmented.contains("of 100 images"), "{augmented}");
    let table = |stdout: &str| stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_ne!(
        table(&clean),
        table(&augmented),
        "flipped and shifted digits were classified exactly as the originals"
    );
    let again = on_train(&["--augment-as", "vit"]);
    assert_eq!(
        augmented, again,
        "the augmented views are drawn from the recipe's seed"
    );

    // An unknown model is a usage error (exit code 2) that lists the compiled specs.
    let mut unknown = eval("lightvit", &checkpoint);
    let out = output(unknown.args(["--augment-as", "no_such_model"]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown model `no_such_model`"), "{stderr}");
    assert!(stderr.contains("cnn_aug"), "{stderr}");
}

/// A weight file of PyTorch's reference model (`bench/pytorch/make_parity_fixtures.py`):
/// the weights plus 3 `fixture.*` tensors that no model has.
fn pytorch_weights(spec: &str) -> PathBuf {
    repo().join(format!("tests/fixtures/parity/{spec}.safetensors"))
}

/// `vit-runtime eval <model> --device cpu --data-dir <repo>/data --weights <weights>`.
fn eval_weights(cwd: &Path, model: &str, weights: &Path) -> Command {
    let mut command = cli(
        cwd,
        &["eval", model, "--device", "cpu", "--limit-test", "100"],
    );
    command
        .arg("--data-dir")
        .arg(repo().join("data"))
        .arg("--weights")
        .arg(weights);
    command
}

#[test]
fn eval_reads_pytorch_weights_and_names_what_does_not_fit() {
    let tmp = TempDir::new().unwrap();
    let weights = pytorch_weights("lightvit");
    let out = output(&mut eval_weights(tmp.path(), "lightvit", &weights));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("from weights"), "{stdout}");
    assert!(
        stderr.contains("warning: 3 tensor(s)") && stderr.contains("fixture.logits"),
        "the unused fixture tensors should be named:\n{stderr}"
    );

    let stderr = fail(&mut eval_weights(tmp.path(), "vit", &weights));
    assert!(
        stderr.contains("tensor `patch_embed.proj.weight`"),
        "{stderr}"
    );
    assert!(!stderr.contains("saved from spec"), "{stderr}");
}

#[test]
fn train_with_weights_starts_from_them_and_its_checkpoint_loads_as_weights() {
    // Adam moves a weight by at most about the learning rate per step (its update is
    // lr * m / (sqrt(v) + eps), |m| <= sqrt(v)): after 2 steps at 1e-7 every weight is
    // within 1e-6 of where it started, while two random draws differ by ~1e-2.
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("lightvit");
    let weights = pytorch_weights("lightvit");
    let mut command = train(
        "lightvit",
        &out,
        &[
            "--epochs",
            "1",
            "--limit-train",
            "256",
            "--limit-test",
            "100",
            "--lr",
            "1e-7",
        ],
    );
    let stdout = succeed(command.arg("--weights").arg(&weights));
    assert!(stdout.contains("initial weights of `lightvit`"), "{stdout}");
    let checkpoint = out.join("checkpoint.safetensors");
    let floats = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let trained: Vec<_> = tensors(&checkpoint)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("optimizer."))
        .collect();
    let initial: Vec<_> = tensors(&weights)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("fixture."))
        .collect();
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&trained), names(&initial));
    for ((name, after), (_, before)) in trained.iter().zip(&initial) {
        for (a, b) in floats(after).iter().zip(floats(before)) {
            assert!(
                (a - b).abs() <= 1e-6,
                "`{name}` moved from {b} to {a}: the run did not start from --weights"
            );
        }
    }

    // A checkpoint is also a weight file; its optimiser moments are not reported as unused.
    let out = output(&mut eval_weights(tmp.path(), "lightvit", &checkpoint));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn deit_finishes_its_teachers_run_first_and_takes_plain_teacher_weights() {
    let tmp = TempDir::new().unwrap();
    let teacher_dir = tmp.path().join("runs/cnn");
    // A teacher run that stopped after 1 of its recipe's 10 epochs.
    succeed(&mut train_small(
        tmp.path(),
        "cnn",
        &["--epochs", "1", "--out", "runs/cnn"],
    ));
    assert_eq!(
        records(&teacher_dir).into_iter().filter(is_epoch).count(),
        1
    );

    let stdout = succeed(&mut train_small(tmp.path(), "deit", &["--epochs", "1"]));
    assert!(
        stdout.contains("stopped after epoch 1 of 10: resuming it first"),
        "{stdout}"
    );
    let teacher_epochs: Vec<_> = records(&teacher_dir)
        .into_iter()
        .filter(is_epoch)
        .map(|r| number(&r, "epoch"))
        .collect();
    assert_eq!(teacher_epochs, (1..=10).map(f64::from).collect::<Vec<_>>());
    assert!(
        stdout.contains("(epoch 10), alpha 0.5, Hard distillation"),
        "{stdout}"
    );
    let deit = records(&tmp.path().join("runs/deit"));
    let last = deit.iter().rfind(|r| is_epoch(r)).expect("an epoch record");
    for field in ["test_acc_class_head", "test_acc_dist_head", "test_acc"] {
        let acc = number(last, field);
        assert!((0.0..=1.0).contains(&acc), "{field} = {acc}");
    }

    // An unrelated `train cnn` is refused: it would replace the teacher in runs/cnn.
    let teacher = std::fs::read(teacher_dir.join("checkpoint.safetensors")).unwrap();
    let stderr = fail(&mut train_small(tmp.path(), "cnn", &["--epochs", "1"]));
    assert!(
        stderr.contains("runs/cnn already holds a run") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(teacher_dir.join("checkpoint.safetensors")).unwrap(),
        teacher,
        "the refused run changed the teacher's checkpoint"
    );

    // A finished teacher run is used as it is.
    let stdout = succeed(&mut train_small(
        tmp.path(),
        "deit",
        &["--epochs", "1", "--out", "runs/deit-again"],
    ));
    assert!(!stdout.contains("teacher `cnn` first"), "{stdout}");
    assert!(!stdout.contains("resuming it first"), "{stdout}");
    assert!(stdout.contains("(epoch 10), alpha 0.5"), "{stdout}");

    // PyTorch weights with the teacher's names serve as well; another model's do not.
    let mut command = train_small(
        tmp.path(),
        "deit",
        &["--epochs", "1", "--out", "runs/deit-pytorch-teacher"],
    );
    let stdout = succeed(command.arg("--teacher").arg(pytorch_weights("cnn")));
    assert!(stdout.contains("(plain weights)"), "{stdout}");
    let mut command = train_small(
        tmp.path(),
        "deit",
        &["--epochs", "1", "--out", "runs/deit-wrong-teacher"],
    );
    let stderr = fail(command.arg("--teacher").arg(pytorch_weights("vit")));
    assert!(
        stderr.contains("as the teacher `cnn`") && stderr.contains("tensor `"),
        "{stderr}"
    );
}

#[test]
fn missing_checkpoint_error_states_its_cause_once() {
    let tmp = TempDir::new().unwrap();
    let stderr = fail(&mut eval(
        "lightvit",
        &tmp.path().join("missing.safetensors"),
    ));
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the cause is repeated:\n{stderr}"
    );
}

#[test]
fn unknown_model_and_bad_flags_are_clear_errors() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("run");
    // A bad model name is a usage error (clap's exit code 2), refused before any work.
    let refused = output(&mut train("lightvt", &out, &[]));
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: unknown model `lightvt`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `lightvit`?"), "{stderr}");
    assert!(!out.exists(), "nothing is written for a refused command");

    if cfg!(not(feature = "cuda")) {
        let mut command = cli(
            tmp.path(),
            &["train", "lightvit", "--device", "cuda", "--quiet"],
        );
        let stderr = fail(command.arg("--out").arg(&out));
        assert!(stderr.contains("built without CUDA"), "{stderr}");
    }

    let help = succeed(&mut cli(tmp.path(), &["train", "--help"]));
    let flags = [
        "--epochs",
        "--lr",
        "--batch-size",
        "--seed",
        "--device",
        "--data-dir",
        "--out",
        "--resume",
        "--limit-train",
        "--limit-test",
        "--teacher",
        "--weights",
        "--overwrite",
    ];
    // `--out` must appear as a whole flag, not as the start of another (`--out-dir`).
    let mentions = |flag: &str| {
        help.match_indices(flag).any(|(at, _)| {
            !help[at + flag.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '-')
        })
    };
    let missing: Vec<_> = flags.iter().filter(|flag| !mentions(flag)).collect();
    assert!(
        missing.is_empty(),
        "`train --help` does not mention {missing:?}:\n{help}"
    );
    // The model argument lists every compiled spec.
    let listed = format!(
        "[possible values: {}]",
        vit_runtime::models::NAMES.join(", ")
    );
    assert!(help.contains(&listed), "{listed} missing from:\n{help}");
    assert!(
        listed.contains("cnn, cnn_aug, cnn_bn, deit, deit_long"),
        "{listed}"
    );
}

#[test]
fn init_writes_the_weights_train_starts_from_and_never_replaces_a_file() {
    let tmp = TempDir::new().unwrap();
    let weights = tmp.path().join("init.safetensors");
    let mut command = cli(tmp.path(), &["init", "lightvit", "--seed", "5", "--out"]);
    let stdout = succeed(command.arg(&weights));
    assert!(stdout.contains("seed 5, 1642 params"), "{stdout}");
    let args = [
        "--limit-train",
        "500",
        "--limit-test",
        "100",
        "--seed",
        "5",
        "--epochs",
        "1",
    ];
    let drawn = tmp.path().join("drawn");
    succeed(&mut train("lightvit", &drawn, &args));
    let given = tmp.path().join("given");
    succeed(
        train("lightvit", &given, &args)
            .arg("--weights")
            .arg(&weights),
    );
    assert_eq!(
        untimed_log(&drawn),
        untimed_log(&given),
        "training from init's weights differs from training from the seed's own draw"
    );

    let before = std::fs::read(&weights).unwrap();
    let mut again = cli(tmp.path(), &["init", "lightvit", "--seed", "6", "--out"]);
    let stderr = fail(again.arg(&weights));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(&weights).unwrap(), before);
}
