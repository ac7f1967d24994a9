//! The metrics log (JSON lines) and accuracy bookkeeping.
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a line of `metrics.jsonl` sums up; written as `"step"` or `"epoch"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// Progress within an epoch (every `--log-every` steps).
    Step,
    /// A finished epoch, with its test accuracy.
    Epoch,
}

/// One line of `metrics.jsonl`: a progress point within an epoch, or an epoch's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: RecordKind,
    pub epoch: usize,
    pub step: u64,
    pub lr: f64,
    /// Mean training loss since the start of the epoch.
    pub loss: f64,
    pub train_acc: f64,
    /// Test accuracy (epoch records only); for DeiT, of the averaged heads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_acc: Option<f64>,
    /// DeiT: test accuracy of the class head and of the distillation head alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_acc_class_head: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_acc_dist_head: Option<f64>,
    pub images_per_sec: f64,
    pub seconds: f64,
}

/// Appends records to `metrics.jsonl`, flushing each line so a crash loses nothing written.
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// Opens the log of a run; when resuming after `keep_epochs` epochs, drops later lines
    /// (the unfinished epoch will be redone, so the final log equals an uninterrupted run's).
    pub fn open(path: &Path, keep_epochs: usize) -> std::io::Result<Self> {
        let kept: Vec<String> = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter(|line| {
                    serde_json::from_str::<Record>(line).is_ok_and(|r| r.epoch <= keep_epochs)
                })
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(path, text)?;
        Ok(MetricsLog { path: path.into() })
    }

    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        writeln!(
            file,
            "{}",
            serde_json::to_string(record).expect("records serialise")
        )?;
        file.flush()
    }

    /// Every record of the log at `path`.
    pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }
}

/// `K x K` counts: row = true class, column = predicted class.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    pub classes: usize,
    pub counts: Vec<usize>,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Confusion {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth * self.classes + predicted] += 1;
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..self.classes)
            .map(|k| self.counts[k * self.classes + k])
            .sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Recall of each class (the per-class accuracy).
    pub fn per_class(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|k| {
                let row = &self.counts[k * self.classes..(k + 1) * self.classes];
                row[k] as f64 / row.iter().sum::<usize>().max(1) as f64
            })
            .collect()
    }

    /// A printable table with class names.
    pub fn table(&self, names: &[String]) -> String {
        let mut out = format!("{:>12} |", "true \\ pred");
        for k in 0..self.classes {
            out += &format!("{:>6}", short(names, k));
        }
        out += " | accuracy\n";
        for (k, acc) in self.per_class().iter().enumerate() {
            out += &format!("{:>12} |", names.get(k).map_or("?", String::as_str));
            for p in 0..self.classes {
                out += &format!("{:>6}", self.counts[k * self.classes + p]);
            }
            out += &format!(" | {:>6.2}%\n", 100.0 * acc);
        }
        out + &format!(
            "overall accuracy {:.2}% of {} images\n",
            100.0 * self.accuracy(),
            self.total()
        )
    }
}

fn short(names: &[String], k: usize) -> String {
    names
        .get(k)
        .map(|n| n.chars().take(5).collect())
        .unwrap_or_else(|| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_accuracy_and_per_class_recall() {
        let mut c = Confusion::new(2);
        for (t, p) in [(0, 0), (0, 0), (0, 1), (1, 1)] {
            c.add(t, p);
        }
        assert_eq!(c.accuracy(), 0.75);
        assert_eq!(c.per_class(), vec![2.0 / 3.0, 1.0]);
    }

    #[test]
    fn reopening_for_resume_keeps_only_finished_epochs() {
        let dir = std::env::temp_dir().join(format!("vit-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let mut log = MetricsLog::open(&path, 0).unwrap();
        let record = |kind, epoch| Record {
            kind,
            epoch,
            step: 0,
            lr: 0.0,
            loss: 0.0,
            train_acc: 0.0,
            test_acc: None,
            test_acc_class_head: None,
            test_acc_dist_head: None,
            images_per_sec: 0.0,
            seconds: 0.0,
        };
        for r in [
            record(RecordKind::Step, 1),
            record(RecordKind::Epoch, 1),
            record(RecordKind::Step, 2),
        ] {
            log.append(&r).unwrap();
        }
        MetricsLog::open(&path, 1).unwrap();
        let kept = MetricsLog::read(&path).unwrap();
        assert_eq!(
            kept,
            vec![record(RecordKind::Step, 1), record(RecordKind::Epoch, 1)]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
