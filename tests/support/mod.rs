//! Running the built `vit-runtime` binary from end-to-end tests, and reading what it wrote.
#![allow(dead_code)] // each test crate uses its own part of these helpers

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vit-runtime");
/// Fields of a metrics record that depend on the machine, not on the run.
pub const TIMING_FIELDS: [&str; 2] = ["images_per_sec", "seconds"];

pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `vit-runtime <args>`, run from `cwd` so that no default `runs/` lands in the repository.
pub fn cli(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("VIT_DATA_DIR");
    command
}

/// `vit-runtime train <model> --quiet --device cpu --data-dir <repo>/data --out <out> <args>`.
pub fn train(model: &str, out: &Path, args: &[&str]) -> Command {
    let data = repo().join("data");
    let mut command = cli(
        out.parent().expect("run dirs live in a temp dir"),
        &["train", model, "--quiet"],
    );
    command
        .args(["--device", "cpu"])
        .arg("--data-dir")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(args);
    command
}

/// `vit-runtime eval <model> --device cpu --data-dir <repo>/data --checkpoint <checkpoint>`.
pub fn eval(model: &str, checkpoint: &Path) -> Command {
    let mut command = cli(
        checkpoint.parent().expect("checkpoints live in a temp dir"),
        &["eval", model],
    );
    command.args(["--device", "cpu", "--limit-test", "100"]);
    command
        .arg("--data-dir")
        .arg(repo().join("data"))
        .arg("--checkpoint")
        .arg(checkpoint);
    command
}

pub fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command`, which must succeed; returns its stdout.
pub fn succeed(command: &mut Command) -> String {
    let out = output(command);
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `command`, which must fail with exit code 1 and an `error:` line, never a panic;
/// returns its stderr.
pub fn fail(command: &mut Command) -> String {
    let out = output(command);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{command:?} should fail with exit code 1; stderr:\n{stderr}"
    );
    assert!(
        stderr.starts_with("error:"),
        "{command:?}: stderr should start with `error:`:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{command:?} panicked:\n{stderr}"
    );
    stderr
}

/// The records of `dir/metrics.jsonl`; a line cut short by a kill is skipped.
pub fn records(dir: &Path) -> Vec<Value> {
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

pub fn is_epoch(record: &Value) -> bool {
    record["kind"] == "epoch"
}

/// A record without its timing fields.
pub fn untimed(mut record: Value) -> Value {
    let fields = record.as_object_mut().expect("a record is a JSON object");
    for field in TIMING_FIELDS {
        assert!(
            fields.remove(field).is_some(),
            "record without `{field}`: {fields:?}"
        );
    }
    record
}

pub fn untimed_log(dir: &Path) -> Vec<Value> {
    records(dir).into_iter().map(untimed).collect()
}

pub fn number(record: &Value, field: &str) -> f64 {
    record[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {record}"))
}

/// Every tensor of a safetensors file, by name, as raw bytes.
pub fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("a valid checkpoint");
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

/// Polls `dir`'s metrics log until `ready` holds, or panics after a minute.
pub fn wait_for(dir: &Path, child: &mut std::process::Child, ready: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ready(&records(dir)) {
            return;
        }
        if let Some(status) = child.try_wait().expect("child status") {
            panic!(
                "the run ended ({status}) before the awaited point: {:#?}",
                records(dir)
            );
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!(
                "the run did not reach the awaited point in 60 s: {:#?}",
                records(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `vit-runtime train <model> --quiet --device cpu` on 256 training and 100 test images,
/// run from `cwd` so that the default `runs/<model>` directories land there.
pub fn train_small(cwd: &Path, model: &str, args: &[&str]) -> Command {
    let mut command = cli(cwd, &["train", model, "--quiet", "--device", "cpu"]);
    command
        .args(["--limit-train", "256", "--limit-test", "100"])
        .arg("--data-dir")
        .arg(repo().join("data"))
        .args(args);
    command
}
