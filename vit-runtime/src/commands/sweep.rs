//! `sweep`: one ordinary `train` run per model, learning rate and batch size, then one plot
//! of their test accuracy per epoch and a table naming the best.
use super::train::{Train, TrainArgs};
use super::{flags, model_names, recipe_of, with_model, CommonArgs, DeviceCommand};
use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::train::metrics::MetricsLog;
use vit_runtime::train::sweep::{self, Prior, RunFile, RunSettings, RunSummary, SweepPoint};
use vit_runtime::train::{run_dir, Existing, RunDir, METRICS};
use vit_runtime::viz::{self, SweepSeries};

#[derive(Args, Clone)]
pub struct SweepArgs {
    /// Spec names (see `models`), e.g. `vit` or `vit,vit_small`: every run uses its
    /// model's recipe except for the swept values; several models are compared.
    #[arg(value_parser = model_names(), value_delimiter = ',', num_args = 1.., required = true)]
    models: Vec<String>,
    /// Learning rates to try, e.g. `0.01,0.001,0.0001`: one run each.
    #[arg(long, value_delimiter = ',', value_parser = flags::learning_rate)]
    lr: Vec<f64>,
    /// Batch sizes to try, e.g. `64,128`; with --lr, every combination is run.
    #[arg(long, value_delimiter = ',', value_parser = flags::at_least_one)]
    batch_size: Vec<usize>,
    /// Epochs of every run (spec: `train.epochs`).
    #[arg(long, value_parser = flags::at_least_one)]
    epochs: Option<usize>,
    /// Seed of every run (spec: `train.seed`): the runs differ only in the swept values.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
    /// Train on the first N training images only (at least 1).
    #[arg(long, value_parser = flags::at_least_one)]
    limit_train: Option<usize>,
    /// Sweep directory: a run directory per value (`lr-0.001/`...; with several models
    /// `<model>/` or `<model>/lr-0.001/`), `sweep.png` and `summary.txt` (default:
    /// `runs/sweep-<model>`, `runs/sweep-<model>-<model>...`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// DeiT: the teacher's checkpoint (as for `train`).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Write a step line to each run's metrics.jsonl every N steps (0: epoch lines only).
    #[arg(long, default_value_t = 50)]
    log_every: usize,
    /// No progress bars (per-epoch lines are still printed).
    #[arg(long)]
    quiet: bool,
    /// Train every run again, replacing what its directory holds (by default a run that
    /// finished with the same settings is reused, one that was cut off is resumed, and a
    /// directory holding a run of other settings is refused before anything starts).
    #[arg(long)]
    fresh: bool,
}

impl DeviceCommand for SweepArgs {
    fn device(&self) -> DeviceChoice {
        self.common.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        run::<D>(self)
    }
}

/// One run of the sweep: a model and the values it is trained with.
struct Run {
    settings: RunSettings,
    label: String,
    dir: PathBuf,
}

/// Every model with every combination of the swept values, each with its run directory.
fn runs<D: SeededDevice>(args: &SweepArgs, dir: &Path) -> anyhow::Result<Vec<Run>> {
    if args.models.len() < 2 && args.lr.is_empty() && args.batch_size.is_empty() {
        bail!(
            "nothing to sweep: give --lr and/or --batch-size lists, e.g. --lr 0.01,0.001, \
             or several models, e.g. `sweep <model>,<other model>`"
        );
    }
    for (i, model) in args.models.iter().enumerate() {
        if args.models[..i].contains(model) {
            bail!("model `{model}` is given twice");
        }
    }
    let points = SweepPoint::grid(&args.lr, &args.batch_size);
    for (i, p) in points.iter().enumerate() {
        if points[..i].iter().any(|q| q.dir_name() == p.dir_name()) {
            bail!("{} is given twice", p.label());
        }
    }
    let several = args.models.len() > 1;
    let mut runs = Vec::new();
    for model in &args.models {
        let recipe = recipe_of::<D>(model)?;
        for point in &points {
            let swept = !(args.lr.is_empty() && args.batch_size.is_empty());
            let (label, run_dir) = match (several, swept) {
                (false, _) => (point.label(), dir.join(point.dir_name())),
                (true, false) => (model.clone(), dir.join(model)),
                (true, true) => (
                    format!("{model}, {}", point.label()),
                    dir.join(model).join(point.dir_name()),
                ),
            };
            let settings = RunSettings {
                model: model.clone(),
                point: *point,
                epochs: args.epochs.unwrap_or(recipe.epochs),
                seed: args.seed,
                limit_train: args.limit_train,
                limit_test: args.common.limit_test,
            };
            runs.push(Run {
                settings,
                label,
                dir: run_dir,
            });
        }
    }
    Ok(runs)
}

fn run<D: SeededDevice>(args: &SweepArgs) -> anyhow::Result<()> {
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("sweep-{}", args.models.join("-"))));
    let runs = runs::<D>(args, &dir)?;
    // One sweep at a time in a directory; each of its runs also locks its own.
    let _lock = RunDir::claim(&dir, Existing::Resume)?;
    refuse_other_settings(args, &runs)?;

    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        println!(
            "\n== sweep run {}/{}: {} -> {}",
            i + 1,
            runs.len(),
            run.label,
            run.dir.display()
        );
        let (seconds, reused, stopped) = match train_one::<D>(args, &run.settings, &run.dir)? {
            Outcome::Reused(seconds) => (seconds, true, None),
            Outcome::Trained(seconds) => (Some(seconds), false, None),
            Outcome::Stopped(error) => {
                println!("run stopped: {error:#}");
                (None, false, Some(format!("{error:#}")))
            }
        };
        let records = MetricsLog::read(&run.dir.join(METRICS)).unwrap_or_default();
        let label = match stopped {
            Some(_) => format!("{} (stopped)", run.label),
            None => run.label.clone(),
        };
        let summary = sweep::summarise(label, &records, seconds, reused);
        match (&summary, stopped) {
            (_, Some(error)) => failures.push(format!("{}: {error}", run.label)),
            (None, None) => failures.push(format!("{}: no epoch finished", run.label)),
            (Some(_), None) => {}
        }
        summaries.extend(summary);
    }
    let epochs = runs.iter().map(|r| r.settings.epochs).max().unwrap_or(1);
    report::<D>(args, &dir, epochs, &summaries, &failures)
}

/// Refuses, before any run starts, a sweep whose run directories hold runs of other
/// settings (another epoch count, seed or limit): they are replaced only with --fresh.
fn refuse_other_settings(args: &SweepArgs, runs: &[Run]) -> anyhow::Result<()> {
    if args.fresh {
        return Ok(());
    }
    let taken: Vec<String> = runs
        .iter()
        .filter(|run| {
            sweep::prior(&run.dir, &run.settings) == Prior::None && run_dir::holds_run(&run.dir)
        })
        .map(|run| run.dir.display().to_string())
        .collect();
    if !taken.is_empty() {
        bail!(
            "{} already hold{} a run with other settings: --fresh trains {} again, or choose \
             another --out",
            taken.join(", "),
            if taken.len() == 1 { "s" } else { "" },
            if taken.len() == 1 { "it" } else { "them" },
        );
    }
    Ok(())
}

/// What became of one run.
enum Outcome {
    /// Finished earlier with the same settings; its wall time then, if known.
    Reused(Option<f64>),
    /// Trained (or resumed) now, in this many seconds.
    Trained(f64),
    /// Training stopped with an error (a diverging learning rate, typically).
    Stopped(anyhow::Error),
}

/// Trains one run through the ordinary `train` path, unless it already finished.
fn train_one<D: SeededDevice>(
    args: &SweepArgs,
    settings: &RunSettings,
    run_dir: &Path,
) -> anyhow::Result<Outcome> {
    let prior = match args.fresh {
        true => Prior::None,
        false => sweep::prior(run_dir, settings),
    };
    if let Prior::Finished { seconds } = prior {
        println!("finished earlier with the same settings: reused (--fresh trains it again)");
        return Ok(Outcome::Reused(seconds));
    }
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
    let mut file = RunFile {
        settings: settings.clone(),
        seconds: None,
    };
    sweep::write_run_file(run_dir, &file)
        .with_context(|| format!("cannot write {}", run_dir.join(sweep::RUN_FILE).display()))?;
    let train_args = TrainArgs {
        model: settings.model.clone(),
        common: args.common.clone(),
        epochs: Some(settings.epochs),
        lr: settings.point.lr,
        batch_size: settings.point.batch_size,
        seed: args.seed,
        out: Some(run_dir.to_path_buf()),
        resume: prior == Prior::Unfinished,
        // A run of other settings is only here with --fresh (see refuse_other_settings).
        overwrite: args.fresh,
        limit_train: args.limit_train,
        teacher: args.teacher.clone(),
        weights: None,
        adapt: false,
        log_every: args.log_every,
        quiet: args.quiet,
    };
    let started = Instant::now();
    if let Err(error) = with_model::<D, _>(&settings.model, Train(&train_args))? {
        return Ok(Outcome::Stopped(error));
    }
    let seconds = started.elapsed().as_secs_f64();
    file.seconds = Some(seconds);
    sweep::write_run_file(run_dir, &file)
        .with_context(|| format!("cannot write {}", run_dir.join(sweep::RUN_FILE).display()))?;
    Ok(Outcome::Trained(seconds))
}

/// Prints and saves the table, draws the plot; an error if no run finished an epoch.
fn report<D: SeededDevice>(
    args: &SweepArgs,
    dir: &Path,
    epochs: usize,
    summaries: &[RunSummary],
    failures: &[String],
) -> anyhow::Result<()> {
    let mut table = sweep::table(summaries);
    for failure in failures {
        table += &format!("failed: {failure}\n");
    }
    println!("\n{table}");
    std::fs::write(dir.join("summary.txt"), &table)
        .with_context(|| format!("cannot write {}", dir.join("summary.txt").display()))?;
    if summaries.is_empty() {
        bail!("no run of the sweep finished an epoch (see above)");
    }
    let swept = match (args.lr.is_empty(), args.batch_size.is_empty()) {
        (false, true) => "learning-rate sweep",
        (true, false) => "batch-size sweep",
        (false, false) => "learning-rate x batch-size sweep",
        (true, true) => "comparison",
    };
    let recipe = recipe_of::<D>(&args.models[0])?;
    let mut title = format!(
        "{} on {}, {swept}: {epochs} epochs, seed {}",
        args.models.join(", "),
        recipe.dataset.name(),
        args.seed.unwrap_or(recipe.seed)
    );
    if let Some(n) = args.limit_train {
        title += &format!(", {n} train images");
    }
    let series: Vec<SweepSeries> = summaries.iter().map(SweepSeries::from).collect();
    let plot = dir.join("sweep.png");
    viz::plot_sweep(&plot, &title, &series, epochs, sweep::best(summaries))?;
    println!(
        "plot {}, table {}",
        plot.display(),
        dir.join("summary.txt").display()
    );
    Ok(())
}
