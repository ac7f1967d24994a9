//! `vit-runtime`: train, evaluate and inspect the models of `models/*.yaml`.
//!
//! This file parses the command line; `commands/` runs each subcommand.
use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
#[command(
    name = "vit-runtime",
    version,
    about = "Train and inspect Vision Transformers compiled from YAML specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model with its spec's recipe (flags override parts of it).
    Train(commands::train::TrainArgs),
    /// Evaluate a checkpoint (or PyTorch weights) on the test set: accuracy, per-class
    /// accuracy, confusion matrix.
    Eval(commands::eval::EvalArgs),
    /// Write a model's initial weights (the draw `train --seed S` starts from) to a file.
    Init(commands::init::InitArgs),
    /// Classify image files with a trained model: the top classes and their probabilities.
    Predict(commands::predict::PredictArgs),
    /// List every compiled spec with its input, classes, parameters, tokens, dims and
    /// forward FLOPs.
    Models,
    /// Find, verify (SHA-256) and if needed download MNIST and Fashion-MNIST.
    Data(commands::data::DataArgs),
    /// Measure training and inference throughput and peak memory of a model on random
    /// inputs (compare with PyTorch: `python3 bench/compare.py`).
    Bench(commands::bench::BenchArgs),
    /// Attention maps of a trained ViT over test images: rollout and raw maps side by side
    /// in a PNG grid, the numbers in a safetensors file beside it.
    Attention(commands::attention::AttentionArgs),
    /// Train one run per model / learning rate / batch size; plot their test accuracy per
    /// epoch, print a table and name the best.
    Sweep(commands::sweep::SweepArgs),
    /// Plot the test accuracy per epoch of several runs in one chart and print a table:
    /// final and best accuracy, the first epoch at given accuracies, wall time, images/s.
    Compare(commands::compare::CompareArgs),
}

fn main() -> std::process::ExitCode {
    vit_runtime::memory::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Models => {
            print!("{}", commands::models::table());
            Ok(())
        }
        Command::Data(args) => commands::data::data(&args),
        Command::Train(args) => commands::on_device(&args),
        Command::Eval(args) => commands::on_device(&args),
        Command::Predict(args) => commands::on_device(&args),
        Command::Init(args) => commands::on_device(&args),
        Command::Bench(args) => commands::on_device(&args),
        Command::Attention(args) => commands::on_device(&args),
        Command::Sweep(args) => commands::on_device(&args),
        Command::Compare(args) => commands::compare::compare(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
