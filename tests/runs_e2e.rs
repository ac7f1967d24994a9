//! Runs are never replaced or mixed, through the built binary: a second `train` into a
//! finished run is refused and leaves it byte for byte, `--overwrite` replaces it, two
//! runs started into one directory never interleave, a sweep does not replace runs of
//! other settings, a checkpoint write that fails keeps the last good one and leaves no
//! temporary file, and every numeric flag outside its range is refused by name.
use std::path::Path;
use std::process::Stdio;
use tempfile::TempDir;

mod support;
use support::*;

/// A lightvit run small enough to take a second or two.
const SMALL: [&str; 6] = [
    "--limit-train",
    "500",
    "--limit-test",
    "100",
    "--log-every",
    "1",
];

/// The bytes of every file a run wrote that a second run could replace.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["checkpoint.safetensors", "metrics.jsonl", "spec.yaml"]
        .iter()
        .map(|name| (name.to_string(), std::fs::read(dir.join(name)).unwrap()))
        .collect()
}

#[test]
fn a_second_train_into_a_finished_run_is_refused_until_asked_to_overwrite() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("run");
    succeed(&mut train(
        "lightvit",
        &out,
        &[&SMALL[..], &["--epochs", "1"]].concat(),
    ));
    let before = snapshot(&out);

    let stderr = fail(&mut train(
        "lightvit",
        &out,
        &[&SMALL[..], &["--epochs", "1", "--seed", "3"]].concat(),
    ));
    assert!(
        stderr.contains(&format!("{} already holds a run", out.display()))
            && stderr.contains("checkpoint.safetensors, metrics.jsonl")
            && stderr.contains("--resume")
            && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "the refused run changed the finished one"
    );

    let kept = tmp.path().join("seed0.safetensors");
    std::fs::copy(out.join("checkpoint.safetensors"), &kept).unwrap();
    let args = [&SMALL[..], &["--epochs", "1", "--seed", "3", "--overwrite"]].concat();
    succeed(&mut train("lightvit", &out, &args));
    assert_ne!(
        tensors(&out.join("checkpoint.safetensors")),
        tensors(&kept),
        "--overwrite trained with seed 3"
    );
    let fresh = tmp.path().join("fresh");
    succeed(&mut train("lightvit", &fresh, &args[..args.len() - 1]));
    assert_eq!(
        untimed_log(&out),
        untimed_log(&fresh),
        "the overwritten run's log holds exactly one run, as a run into a new directory"
    );
}

#[test]
fn two_runs_started_into_one_directory_never_interleave() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("run");
    let args = [
        "--limit-train",
        "20000",
        "--limit-test",
        "100",
        "--log-every",
        "1",
        "--epochs",
        "2",
    ];
    let mut first = train("lightvit", &out, &args)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the first run");
    wait_for(&out, &mut first, |log| !log.is_empty());

    let stderr = fail(&mut train("lightvit", &out, &args));
    assert!(
        stderr.contains(&format!("{} is in use by another run", out.display()))
            && stderr.contains(&format!("pid {}", first.id())),
        "the second run should name the directory and the first run's process:\n{stderr}"
    );
    let stderr = fail(&mut train(
        "lightvit",
        &out,
        &[&args[..], &["--resume"]].concat(),
    ));
    assert!(stderr.contains("in use by another run"), "{stderr}");
    assert!(first.wait().unwrap().success());

    let alone = tmp.path().join("alone");
    succeed(&mut train("lightvit", &alone, &args));
    assert_eq!(
        untimed_log(&out),
        untimed_log(&alone),
        "the log of the first run holds records of another"
    );
}

#[test]
fn a_sweep_does_not_replace_runs_of_other_settings() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("sweep");
    let sweep = |epochs: &str, extra: &[&str]| {
        let mut command = cli(
            tmp.path(),
            &[
                "sweep",
                "lightvit",
                "--lr",
                "0.01,0.02",
                "--quiet",
                "--device",
                "cpu",
            ],
        );
        command
            .args([
                "--limit-train",
                "300",
                "--limit-test",
                "100",
                "--epochs",
                epochs,
            ])
            .arg("--data-dir")
            .arg(repo().join("data"))
            .arg("--out")
            .arg(&dir)
            .args(extra);
        command
    };
    succeed(&mut sweep("1", &[]));
    let run = dir.join("lr-0.01");
    let before = snapshot(&run);

    let stderr = fail(&mut sweep("2", &[]));
    assert!(
        stderr.contains(&run.display().to_string())
            && stderr.contains("a run with other settings")
            && stderr.contains("--fresh"),
        "{stderr}"
    );
    assert_eq!(snapshot(&run), before, "the refused sweep changed a run");

    succeed(&mut sweep("2", &["--fresh"]));
    let epochs = records(&run).into_iter().filter(is_epoch).count();
    assert_eq!(
        epochs, 2,
        "--fresh replaced the 1-epoch run with a 2-epoch one"
    );
}

/// `/dev/full` takes the place of the checkpoint's temporary file: every write to it fails
/// with "No space left on device", as on a full disk.
#[cfg(target_os = "linux")]
#[test]
fn a_checkpoint_write_that_fails_keeps_the_last_good_one_and_no_temporary_file() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("run");
    succeed(&mut train(
        "lightvit",
        &out,
        &[&SMALL[..], &["--epochs", "1"]].concat(),
    ));
    let good = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let temporary = out.join("checkpoint.tmp");
    std::os::unix::fs::symlink("/dev/full", &temporary).unwrap();

    let resume = [&SMALL[..], &["--epochs", "2", "--resume"]].concat();
    let stderr = fail(&mut train("lightvit", &out, &resume));
    assert!(
        stderr.contains("No space left on device") && stderr.contains("checkpoint"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        good,
        "the last good checkpoint changed"
    );
    assert!(
        std::fs::symlink_metadata(&temporary).is_err(),
        "the temporary file is left behind"
    );
    assert!(
        !records(&out).iter().any(|r| is_epoch(r) && r["epoch"] == 2),
        "the log claims epoch 2, whose checkpoint was not saved"
    );

    // With room again, the run resumes from the good checkpoint.
    let stdout = succeed(&mut train("lightvit", &out, &resume));
    assert!(
        stdout.contains("resuming `lightvit` after epoch 1"),
        "{stdout}"
    );
}

#[test]
fn every_numeric_flag_outside_its_range_is_refused_by_name() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("run");
    let cases: [(&[&str], &str); 14] = [
        (&["train", "lightvit", "--epochs", "0"], "--epochs"),
        (&["train", "lightvit", "--lr", "0"], "--lr"),
        (&["train", "lightvit", "--lr=-1"], "--lr"),
        (&["train", "lightvit", "--lr", "NaN"], "--lr"),
        (&["train", "lightvit", "--lr", "inf"], "--lr"),
        (&["train", "lightvit", "--batch-size", "0"], "--batch-size"),
        (
            &["train", "lightvit", "--limit-train", "0"],
            "--limit-train",
        ),
        (&["train", "lightvit", "--limit-test", "0"], "--limit-test"),
        (&["eval", "lightvit", "--limit-test", "0"], "--limit-test"),
        (&["sweep", "lightvit", "--lr", "0.1,0"], "--lr"),
        (
            &["sweep", "lightvit", "--lr", "0.1", "--limit-train", "0"],
            "--limit-train",
        ),
        (&["predict", "lightvit", "x.png", "--top", "0"], "--top"),
        (&["bench", "lightvit", "--steps", "0"], "--steps"),
        (&["attention", "lightvit", "--count", "0"], "--count"),
    ];
    for (args, flag) in cases {
        let mut command = cli(tmp.path(), args);
        if args[0] == "train" || args[0] == "sweep" {
            command.arg("--out").arg(&out);
        }
        let refused = output(&mut command);
        let stderr = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: invalid value '") && stderr.contains(flag),
            "{args:?} should be refused naming {flag}:\n{stderr}"
        );
        assert!(
            stderr.contains("above 0") || stderr.contains("at least 1"),
            "{stderr}"
        );
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    let refused = output(
        cli(
            tmp.path(),
            &["train", "lightvit", "--resume", "--overwrite"],
        )
        .arg("--out")
        .arg(&out),
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("cannot be used with"),
        "{}",
        text(&refused.stderr)
    );
}
