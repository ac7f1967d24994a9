//! Sweeps: one ordinary training run per hyper-parameter value, compared on the test set.
//!
//! Each run lives in its own run directory (`<sweep>/lr-0.001/`) with a `sweep-run.json`
//! naming the settings it was started with, so a sweep run again skips the runs that
//! finished with the same settings and resumes the ones that were cut off.
use super::metrics::{Record, RecordKind};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The overrides of one run of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
}

impl SweepPoint {
    /// Every combination of the values (an empty list leaves that setting to the recipe).
    pub fn grid(lrs: &[f64], batch_sizes: &[usize]) -> Vec<SweepPoint> {
        let lrs: Vec<Option<f64>> = match lrs {
            [] => vec![None],
            _ => lrs.iter().copied().map(Some).collect(),
        };
        let sizes: Vec<Option<usize>> = match batch_sizes {
            [] => vec![None],
            _ => batch_sizes.iter().copied().map(Some).collect(),
        };
        lrs.iter()
            .flat_map(|&lr| {
                sizes
                    .iter()
                    .map(move |&batch_size| SweepPoint { lr, batch_size })
            })
            .collect()
    }

    /// The legend and table label: `lr 0.001`, `batch 64`, `lr 0.001, batch 64`.
    pub fn label(&self) -> String {
        self.parts(" ", ", ")
    }

    /// The run directory's name: `lr-0.001`, `bs-64`, `lr-0.001_bs-64`.
    pub fn dir_name(&self) -> String {
        self.parts("-", "_").replace("batch", "bs")
    }

    fn parts(&self, key_sep: &str, sep: &str) -> String {
        let mut parts = Vec::new();
        if let Some(lr) = self.lr {
            parts.push(format!("lr{key_sep}{lr}"));
        }
        if let Some(b) = self.batch_size {
            parts.push(format!("batch{key_sep}{b}"));
        }
        match parts.is_empty() {
            true => "recipe".into(),
            false => parts.join(sep),
        }
    }
}

/// The settings a sweep run was started with, as given on the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub model: String,
    pub point: SweepPoint,
    pub epochs: usize,
    pub seed: Option<u64>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
}

/// `sweep-run.json`: the settings, and the wall time once the run has finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFile {
    pub settings: RunSettings,
    pub seconds: Option<f64>,
}

pub const RUN_FILE: &str = "sweep-run.json";

/// What a run directory already holds for `settings`.
#[derive(Debug, Clone, PartialEq)]
pub enum Prior {
    /// Every epoch is done; the wall time of the run that did them, if known.
    Finished { seconds: Option<f64> },
    /// Started with these settings but cut off: resume it.
    Unfinished,
    /// Nothing, or a run with other settings: start afresh.
    None,
}

/// Looks at `dir` (a run directory) for a run with `settings`.
pub fn prior(dir: &Path, settings: &RunSettings) -> Prior {
    let Some(file) = std::fs::read_to_string(dir.join(RUN_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<RunFile>(&text).ok())
    else {
        return Prior::None;
    };
    if file.settings != *settings {
        return Prior::None;
    }
    let done = super::metrics::MetricsLog::read(&dir.join(super::run_dir::METRICS))
        .unwrap_or_default()
        .iter()
        .filter(|r| r.kind == RecordKind::Epoch)
        .map(|r| r.epoch)
        .max()
        .unwrap_or(0);
    if done >= settings.epochs && dir.join(super::run_dir::CHECKPOINT).exists() {
        Prior::Finished {
            seconds: file.seconds,
        }
    } else {
        Prior::Unfinished
    }
}

pub fn write_run_file(dir: &Path, file: &RunFile) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(RUN_FILE), text + "\n")
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub label: String,
    /// `(epoch, test accuracy)` of every epoch.
    pub points: Vec<(usize, f64)>,
    pub final_acc: f64,
    pub best_acc: f64,
    pub best_epoch: usize,
    /// Wall time of the run, if known.
    pub seconds: Option<f64>,
    /// Finished before this sweep started (skipped).
    pub reused: bool,
}

impl RunSummary {
    /// The first epoch whose test accuracy is at least `accuracy` (in [0, 1]), if any.
    pub fn first_epoch_reaching(&self, accuracy: f64) -> Option<usize> {
        self.points
            .iter()
            .find(|&&(_, acc)| acc >= accuracy)
            .map(|&(epoch, _)| epoch)
    }
}

/// Summarises a run from its epoch records; `None` when no epoch has a test accuracy.
pub fn summarise(
    label: String,
    epochs: &[Record],
    seconds: Option<f64>,
    reused: bool,
) -> Option<RunSummary> {
    let points: Vec<(usize, f64)> = epochs
        .iter()
        .filter(|r| r.kind == RecordKind::Epoch)
        .filter_map(|r| r.test_acc.map(|acc| (r.epoch, acc)))
        .collect();
    let &(_, final_acc) = points.last()?;
    // The first epoch reaching the best accuracy.
    let (best_epoch, best_acc) =
        points
            .iter()
            .copied()
            .fold((0, f64::NEG_INFINITY), |b, p| if p.1 > b.1 { p } else { b });
    Some(RunSummary {
        label,
        points,
        final_acc,
        best_acc,
        best_epoch,
        seconds,
        reused,
    })
}

/// The run with the highest final test accuracy (the model one would keep); ties go to the
/// higher best accuracy, then to the earlier run.
pub fn best(runs: &[RunSummary]) -> Option<usize> {
    let key = |r: &RunSummary| (r.final_acc, r.best_acc);
    (0..runs.len()).reduce(|b, i| if key(&runs[i]) > key(&runs[b]) { i } else { b })
}

/// The printed table, with the best run named under it.
pub fn table(runs: &[RunSummary]) -> String {
    let width = runs.iter().map(|r| r.label.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$}  {:>10}  {:>17}  {:>10}\n",
        "run", "final test", "best test (epoch)", "wall time"
    );
    for r in runs {
        let time = match (r.seconds, r.reused) {
            (Some(s), false) => format!("{s:.1} s"),
            (Some(s), true) => format!("{s:.1} s*"),
            (None, _) => "?".into(),
        };
        out += &format!(
            "{:<width$}  {:>9.2}%  {:>9.2}% ({:>3})  {:>10}\n",
            r.label,
            100.0 * r.final_acc,
            100.0 * r.best_acc,
            r.best_epoch,
            time
        );
    }
    if runs.iter().any(|r| r.reused) {
        out += "* finished earlier with the same settings: not run again (--fresh reruns it)\n";
    }
    match best(runs) {
        Some(b) => {
            out += &format!(
                "best: {} ({:.2}% final test accuracy)\n",
                runs[b].label,
                100.0 * runs[b].final_acc
            )
        }
        None => out += "no run finished an epoch\n",
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, test: f64) -> Record {
        Record {
            kind: RecordKind::Epoch,
            epoch,
            step: 0,
            lr: 0.0,
            loss: 0.0,
            train_acc: 0.0,
            test_acc: Some(test),
            test_acc_class_head: None,
            test_acc_dist_head: None,
            images_per_sec: 0.0,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_first_epoch_reaching_an_accuracy_is_found_or_none() {
        let run = summarise(
            "vit".into(),
            &[
                epoch(1, 0.85),
                epoch(2, 0.91),
                epoch(3, 0.90),
                epoch(4, 0.92),
            ],
            None,
            false,
        )
        .unwrap();
        assert_eq!(run.first_epoch_reaching(0.90), Some(2));
        assert_eq!(run.first_epoch_reaching(0.92), Some(4));
        assert_eq!(run.first_epoch_reaching(0.85), Some(1));
        assert_eq!(run.first_epoch_reaching(0.925), None);
    }

    #[test]
    fn grid_crosses_the_values_and_names_each_run() {
        let points = SweepPoint::grid(&[0.01, 0.001], &[64, 128]);
        assert_eq!(points.len(), 4);
        assert_eq!(points[1].label(), "lr 0.01, batch 128");
        assert_eq!(points[1].dir_name(), "lr-0.01_bs-128");
        let lr_only = SweepPoint::grid(&[0.0001], &[]);
        assert_eq!(lr_only[0].dir_name(), "lr-0.0001");
        assert_eq!(SweepPoint::grid(&[], &[32])[0].label(), "batch 32");
    }

    #[test]
    fn summary_has_final_and_first_best_epoch_and_the_best_run_is_named() {
        let a = summarise(
            "lr 0.01".into(),
            &[epoch(1, 0.5), epoch(2, 0.8), epoch(3, 0.7)],
            Some(12.0),
            false,
        )
        .unwrap();
        assert_eq!((a.final_acc, a.best_acc, a.best_epoch), (0.7, 0.8, 2));
        let b = summarise("lr 0.001".into(), &[epoch(1, 0.75)], None, true).unwrap();
        assert_eq!(best(&[a.clone(), b.clone()]), Some(1));
        let table = table(&[a, b]);
        assert!(
            table.contains("best: lr 0.001 (75.00% final test accuracy)"),
            "{table}"
        );
        assert!(table.contains("80.00% (  2)"), "{table}");
        assert!(table.contains("12.0 s"), "{table}");
        assert!(summarise("x".into(), &[], None, false).is_none());
    }

    #[test]
    fn a_finished_run_with_the_same_settings_is_found_and_other_settings_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let settings = RunSettings {
            model: "lightvit".into(),
            point: SweepPoint {
                lr: Some(0.01),
                batch_size: None,
            },
            epochs: 2,
            seed: Some(0),
            limit_train: Some(512),
            limit_test: None,
        };
        assert_eq!(prior(dir.path(), &settings), Prior::None);
        let file = RunFile {
            settings: settings.clone(),
            seconds: None,
        };
        write_run_file(dir.path(), &file).unwrap();
        assert_eq!(prior(dir.path(), &settings), Prior::Unfinished);
        let mut log =
            super::super::metrics::MetricsLog::open(&dir.path().join("metrics.jsonl"), 0).unwrap();
        log.append(&epoch(1, 0.5)).unwrap();
        log.append(&epoch(2, 0.6)).unwrap();
        std::fs::write(dir.path().join("checkpoint.safetensors"), b"x").unwrap();
        write_run_file(
            dir.path(),
            &RunFile {
                seconds: Some(3.0),
                ..file
            },
        )
        .unwrap();
        assert_eq!(
            prior(dir.path(), &settings),
            Prior::Finished { seconds: Some(3.0) }
        );
        let other = RunSettings {
            seed: Some(1),
            ..settings
        };
        assert_eq!(prior(dir.path(), &other), Prior::None);
    }
}
