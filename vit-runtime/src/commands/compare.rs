//! `compare`: the test accuracy per epoch of several runs in one chart, and a table of how
//! far and how fast each got. Reads only the runs' `metrics.jsonl`, so it also follows a
//! run that is still training.
use super::flags;
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use vit_runtime::train::metrics::{MetricsLog, Record, RecordKind};
use vit_runtime::train::sweep::{self, RunSummary};
use vit_runtime::train::METRICS;
use vit_runtime::viz::{self, SweepSeries};

#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    /// Run directories, each holding the `metrics.jsonl` that `train` writes, e.g.
    /// `runs/vit_long runs/deit_long runs/cnn`.
    #[arg(required = true, num_args = 1..)]
    runs: Vec<PathBuf>,
    /// Legend and table labels, one per run, comma-separated (default: each directory's name).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Test accuracies in percent whose first epoch the table reports, e.g. `90,92`.
    #[arg(long, value_delimiter = ',', default_value = "90,92", value_parser = flags::percent)]
    reach: Vec<f64>,
    /// Where to write the chart (PNG); missing parent folders are created.
    #[arg(long, default_value = "compare.png")]
    out: PathBuf,
    /// The chart's title.
    #[arg(long, default_value = "test accuracy per epoch")]
    title: String,
}

/// One run's row: the summary of its epochs and what its log says of its speed.
struct Row {
    summary: RunSummary,
    /// Sum of the epochs' wall times (training and test), seconds.
    seconds: f64,
    /// Median over epochs of the training images per second.
    images_per_sec: f64,
}

pub fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    if !args.labels.is_empty() && args.labels.len() != args.runs.len() {
        bail!(
            "--labels gives {} labels for {} run {}: one label per run directory",
            args.labels.len(),
            args.runs.len(),
            if args.runs.len() == 1 {
                "directory"
            } else {
                "directories"
            }
        );
    }
    let rows = args
        .runs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let label = args.labels.get(i).cloned().unwrap_or_else(|| name_of(dir));
            row(dir, label)
        })
        .collect::<anyhow::Result<Vec<Row>>>()?;
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let series: Vec<SweepSeries> = rows.iter().map(|r| (&r.summary).into()).collect();
    // No run is marked best: runs compared here may differ in length or still be training.
    viz::plot_sweep(&args.out, &args.title, &series, 1, None)?;
    print!("{}", table(&rows, &args.reach));
    println!("plot {}", args.out.display());
    Ok(())
}

/// The directory's last component (`runs/deit_long` -> `deit_long`).
fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}

fn row(dir: &Path, label: String) -> anyhow::Result<Row> {
    let path = dir.join(METRICS);
    if !path.is_file() {
        bail!(
            "{} has no {METRICS}: give the directory `train` wrote a run into (default runs/<model>)",
            dir.display()
        );
    }
    let records =
        MetricsLog::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let epochs: Vec<Record> = records
        .into_iter()
        .filter(|r| r.kind == RecordKind::Epoch && r.test_acc.is_some())
        .collect();
    let Some(summary) = sweep::summarise(label, &epochs, None, false) else {
        bail!("{} has no finished epoch yet", path.display());
    };
    let mut speeds: Vec<f64> = epochs.iter().map(|r| r.images_per_sec).collect();
    speeds.sort_by(f64::total_cmp);
    Ok(Row {
        summary,
        seconds: epochs.iter().map(|r| r.seconds).sum(),
        images_per_sec: speeds[speeds.len() / 2],
    })
}

/// A Markdown table: epochs done, final and best test accuracy, the first epoch at each
/// accuracy of `reach` (percent), wall time and training speed.
fn table(rows: &[Row], reach: &[f64]) -> String {
    let mut header = "| run | epochs | final test | best test (epoch) |".to_string();
    let mut rule = "|---|---|---|---|".to_string();
    for r in reach {
        header += &format!(" epoch at {r}% |");
        rule += "---|";
    }
    header += " wall time | images/s (median) |\n";
    rule += "---|---|\n";
    let mut out = header + &rule;
    for row in rows {
        let s = &row.summary;
        out += &format!(
            "| {} | {} | {:.2}% | {:.2}% ({}) |",
            s.label,
            s.points.len(),
            100.0 * s.final_acc,
            100.0 * s.best_acc,
            s.best_epoch
        );
        for r in reach {
            match s.first_epoch_reaching(r / 100.0) {
                Some(epoch) => out += &format!(" {epoch} |"),
                None => out += " not reached |",
            }
        }
        out += &format!(
            " {} | {:.0} |\n",
            wall_time(row.seconds),
            row.images_per_sec
        );
    }
    out
}

/// `694 s`, `48 min`, `1 h 45 min`.
fn wall_time(seconds: f64) -> String {
    let minutes = (seconds / 60.0).round() as u64;
    match (seconds, minutes) {
        (s, _) if s < 600.0 => format!("{s:.0} s"),
        (_, m) if m < 60 => format!("{m} min"),
        (_, m) => format!("{} h {} min", m / 60, m % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_read_in_the_unit_people_use() {
        assert_eq!(wall_time(694.4 - 100.0), "594 s");
        assert_eq!(wall_time(2_891.0), "48 min");
        assert_eq!(wall_time(6_300.0), "1 h 45 min");
    }
}
