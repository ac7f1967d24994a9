//! `sweep`, `compare` and `attention` end to end on a tiny LightViT run (512 MNIST training
//! images, 256 test images, one epoch): the files they promise exist and decode, a finished
//! sweep run is reused, and bad input is a clear error, never a panic. A few seconds in all.
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vit-runtime");

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"))
}

/// `vit-runtime <args> --device cpu --data-dir <repo>/data`, run in `cwd` so that no default
/// `runs/` lands in the repository.
fn cli(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .args(["--device", "cpu", "--data-dir"])
        .arg(data_dir())
        .current_dir(cwd)
        .env_remove("VIT_DATA_DIR");
    command
}

fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn succeed(command: &mut Command) -> String {
    let out = output(command);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{command:?} failed:\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

/// Runs `command`, which must fail with an `error:` line (exit code 1, or 2 for a flag that
/// clap rejects), never a panic; returns its stderr.
fn fail(command: &mut Command) -> String {
    let out = output(command);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{command:?} should fail; status {}, stderr:\n{stderr}",
        out.status
    );
    assert!(stderr.starts_with("error:"), "{command:?}:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "{command:?} panicked:\n{stderr}"
    );
    stderr
}

/// Decodes a PNG completely; returns (width, height, number of distinct colours).
fn decode_png(path: &Path) -> (u32, u32, usize) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(file)
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).expect("the PNG decodes");
    let channels = frame.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> =
        pixels[..frame.buffer_size()].chunks(channels).collect();
    (frame.width, frame.height, colours.len())
}

/// The epoch records of a run directory.
fn epochs(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "epoch")
        .collect()
}

const TINY: [&str; 7] = [
    "--epochs",
    "1",
    "--limit-train",
    "512",
    "--limit-test",
    "256",
    "--quiet",
];

#[test]
fn sweep_then_attention_on_a_tiny_lightvit_run_write_decodable_files() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep_dir = tmp.path().join("sweep");
    let mut sweep = cli(tmp.path(), &["sweep", "lightvit", "--lr", "0.01,0.002"]);
    sweep.args(TINY).arg("--out").arg(&sweep_dir);
    let stdout = succeed(&mut sweep);
    assert!(stdout.contains("final test"), "no table:\n{stdout}");
    assert!(stdout.contains("best: lr "), "no best run named:\n{stdout}");
    for run in ["lr-0.01", "lr-0.002"] {
        let run = sweep_dir.join(run);
        assert_eq!(epochs(&run).len(), 1, "{}", run.display());
        assert!(run.join("checkpoint.safetensors").exists());
        assert!(run.join("curves.png").exists());
    }
    let summary = std::fs::read_to_string(sweep_dir.join("summary.txt")).unwrap();
    assert!(summary.contains("lr 0.002"), "{summary}");
    let (width, height, colours) = decode_png(&sweep_dir.join("sweep.png"));
    assert_eq!((width, height), (1000, 560));
    assert!(colours > 10, "sweep.png is almost empty");

    // The same sweep again reuses both runs instead of training them.
    let mut again = cli(tmp.path(), &["sweep", "lightvit", "--lr", "0.01,0.002"]);
    again.args(TINY).arg("--out").arg(&sweep_dir);
    let stdout = succeed(&mut again);
    assert_eq!(stdout.matches("reused").count(), 2, "{stdout}");
    assert!(!stdout.contains("training `lightvit`"), "{stdout}");

    // attention: 3 test images, 3 rollout columns + 2 raw ones.
    let checkpoint = sweep_dir.join("lr-0.01").join("checkpoint.safetensors");
    let out = tmp.path().join("maps").join("grid.png");
    let mut attention = cli(
        tmp.path(),
        &[
            "attention",
            "lightvit",
            "--images",
            "0,3,9999",
            "--raw",
            "1:0,last:max",
        ],
    );
    attention
        .arg("--checkpoint")
        .arg(&checkpoint)
        .arg("--out")
        .arg(&out);
    let stdout = succeed(&mut attention);
    assert!(stdout.contains("test #9999: true: "), "{stdout}");
    let (width, height, colours) = decode_png(&out);
    assert!(width > height && height > 3 * 28, "{width}x{height}");
    assert!(
        colours > 200,
        "the heat maps are missing ({colours} colours)"
    );

    let bytes = std::fs::read(out.with_extension("safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).expect("the export is safetensors");
    assert_eq!(file.tensor("attention").unwrap().shape(), [3, 2, 2, 50, 50]);
    assert_eq!(file.tensor("maps").unwrap().shape(), [3, 5, 7, 7]);
    assert_eq!(file.tensor("images").unwrap().shape(), [3, 28, 28]);
    let indices: Vec<i64> = file
        .tensor("indices")
        .unwrap()
        .data()
        .chunks(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(indices, [0, 3, 9999]);
    let attention: Vec<f32> = file
        .tensor("attention")
        .unwrap()
        .data()
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    for row in attention.chunks(50) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "an attention row sums to {sum}");
    }
    let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
    let columns = &metadata.metadata().as_ref().unwrap()["columns"];
    assert!(columns.contains("rollout, min of heads"), "{columns}");

    // Without --out, the grid goes beside the checkpoint; --count draws images at random.
    let mut default_out = cli(tmp.path(), &["attention", "lightvit", "--count", "2"]);
    default_out.arg("--checkpoint").arg(&checkpoint);
    succeed(&mut default_out);
    assert!(checkpoint.with_file_name("attention.png").exists());
    assert!(checkpoint.with_file_name("attention.safetensors").exists());

    // An image index past the test set is an error naming its size.
    let mut past_end = cli(tmp.path(), &["attention", "lightvit", "--images", "10000"]);
    past_end.arg("--checkpoint").arg(&checkpoint);
    let err = fail(&mut past_end);
    assert!(err.contains("test set has 10000 images"), "{err}");
}

#[test]
fn a_sweep_of_several_models_compares_them_in_one_table_and_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep_dir = tmp.path().join("compare");
    let mut sweep = cli(tmp.path(), &["sweep", "lightvit,lightvit_fashion"]);
    sweep.args(TINY).arg("--out").arg(&sweep_dir);
    let stdout = succeed(&mut sweep);
    for model in ["lightvit", "lightvit_fashion"] {
        let run = sweep_dir.join(model);
        assert_eq!(epochs(&run).len(), 1, "{}", run.display());
        let spec = std::fs::read_to_string(run.join("spec.yaml")).unwrap();
        assert!(spec.contains(&format!("name: {model}\n")), "{spec}");
    }
    let summary = std::fs::read_to_string(sweep_dir.join("summary.txt")).unwrap();
    assert!(
        summary.lines().any(|l| l.starts_with("lightvit_fashion ")),
        "{summary}"
    );
    assert!(stdout.contains("best: lightvit"), "{stdout}");
    let (width, height, colours) = decode_png(&sweep_dir.join("sweep.png"));
    assert_eq!((width, height), (1000, 560));
    assert!(colours > 10, "sweep.png is almost empty");

    // With --lr too, every model gets every value.
    let mut both = cli(
        tmp.path(),
        &[
            "sweep",
            "lightvit",
            "lightvit_fashion",
            "--lr",
            "0.01,0.002",
        ],
    );
    both.args(TINY).arg("--out").arg(tmp.path().join("grid"));
    let stdout = succeed(&mut both);
    assert!(stdout.contains("lightvit_fashion, lr 0.002"), "{stdout}");
    assert!(tmp
        .path()
        .join("grid/lightvit_fashion/lr-0.002/checkpoint.safetensors")
        .exists());

    // `compare` reads any runs' logs: one chart, one row per run.
    let chart = tmp.path().join("plots/compare.png");
    let mut compare = Command::new(BIN);
    compare
        .arg("compare")
        .arg(sweep_dir.join("lightvit"))
        .arg(tmp.path().join("grid/lightvit_fashion/lr-0.002"))
        .args([
            "--labels",
            "plain,fashion 0.002",
            "--reach",
            "5,100",
            "--out",
        ])
        .arg(&chart);
    let stdout = succeed(&mut compare);
    assert!(
        stdout.contains("| epoch at 5% | epoch at 100% |"),
        "{stdout}"
    );
    for label in ["plain", "fashion 0.002"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {label} | 1 | ")))
            .unwrap_or_else(|| panic!("no row for {label}:\n{stdout}"));
        // Every tiny run beats 5% after its one epoch, none reaches 100%.
        assert!(row.contains("| 1 | not reached |"), "{row}");
    }
    let (width, height, colours) = decode_png(&chart);
    assert_eq!((width, height), (1000, 560));
    assert!(colours > 10, "compare.png is almost empty");
}

#[test]
fn bad_compare_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let compare = |args: &[&str]| {
        let mut command = Command::new(BIN);
        command.arg("compare").args(args).current_dir(tmp.path());
        fail(&mut command)
    };
    let err = compare(&["runs/missing"]);
    assert!(err.contains("runs/missing has no metrics.jsonl"), "{err}");
    std::fs::create_dir_all(tmp.path().join("started")).unwrap();
    std::fs::write(
        tmp.path().join("started/metrics.jsonl"),
        r#"{"kind":"step","epoch":1,"step":10,"lr":0.001,"loss":2.0,"train_acc":0.2,"images_per_sec":900.0,"seconds":1.0}"#,
    )
    .unwrap();
    let err = compare(&["started"]);
    assert!(err.contains("has no finished epoch yet"), "{err}");
    let err = compare(&["started", "--labels", "a,b"]);
    assert!(
        err.contains("--labels gives 2 labels for 1 run directory"),
        "{err}"
    );
    let err = compare(&["started", "--reach", "90,0"]);
    assert!(
        err.contains("'--reach <REACH>'") && err.contains("not an accuracy in percent"),
        "{err}"
    );
    assert!(!tmp.path().join("compare.png").exists());
}

#[test]
fn bad_attention_settings_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let attention = |args: &[&str]| {
        let mut command = cli(tmp.path(), &["attention", "lightvit"]);
        command.args(args);
        fail(&mut command)
    };
    // lightvit has 2 blocks of 2 heads; these are checked before any file is read.
    let cases: [(&[&str], &str); 7] = [
        (
            &["--blocks", "0..3"],
            "blocks 0..3 are out of range: the model has blocks 0..2",
        ),
        (&["--blocks", "1..1"], "block range 1..1 is empty"),
        (
            &["--raw", "1:2"],
            "head 2 is out of range: the model has heads 0..2",
        ),
        (&["--raw", "2:0"], "block 2 is out of range"),
        (&["--discard", "1"], "discard ratio 1 is outside [0, 1)"),
        (&["--fusion", "median"], "unknown head fusion `median`"),
        (&["--count", "3", "--images", "1"], "cannot be used with"),
    ];
    for (args, expected) in cases {
        let err = attention(args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let err = attention(&["--checkpoint", "missing.safetensors"]);
    assert!(
        err.contains("no checkpoint at missing.safetensors"),
        "{err}"
    );
    let err = fail(&mut cli(tmp.path(), &["attention", "cnn"]));
    assert!(
        err.contains("`cnn` is a CNN: it has no attention maps"),
        "{err}"
    );
}

#[test]
fn bad_sweep_lists_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = |args: &[&str]| {
        let mut command = cli(tmp.path(), &["sweep", "lightvit"]);
        command.args(args);
        fail(&mut command)
    };
    assert!(sweep(&[]).contains("nothing to sweep"));
    assert!(sweep(&["--lr", "0.01,0.01"]).contains("lr 0.01 is given twice"));
    let refused = sweep(&["--lr", "0.01,0"]);
    assert!(
        refused.contains("'--lr <LR>'")
            && refused.contains("not a learning rate (a finite number above 0)"),
        "{refused}"
    );
    let refused = sweep(&["--batch-size", "64,x"]);
    assert!(
        refused.contains("'--batch-size <BATCH_SIZE>'") && refused.contains("at least 1"),
        "{refused}"
    );
    let refused = sweep(&["--lr", "0.01", "--epochs", "0"]);
    assert!(
        refused.contains("'--epochs <EPOCHS>'") && refused.contains("at least 1"),
        "{refused}"
    );
    let mut twice = cli(tmp.path(), &["sweep", "lightvit,lightvit"]);
    assert!(fail(&mut twice).contains("model `lightvit` is given twice"));
    assert!(
        !tmp.path().join("runs").exists(),
        "a failed sweep left a run"
    );
}

#[test]
fn help_explains_every_flag_of_attention_and_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    for command in ["attention", "sweep"] {
        let out = output(
            Command::new(BIN)
                .args([command, "--help"])
                .current_dir(tmp.path()),
        );
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = help.lines().collect();
        let mut flags = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("--") {
                continue;
            }
            flags += 1;
            // clap's long help puts a flag's doc comment on the lines under it.
            let doc = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
            assert!(
                !doc.is_empty() && !doc.starts_with('-'),
                "`{command} --help`: {} has no explanation:\n{help}",
                line.trim()
            );
        }
        assert!(
            flags >= 12,
            "`{command} --help` lists {flags} flags:\n{help}"
        );
    }
}
