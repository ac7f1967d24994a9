//! `data`: finds, verifies and if needed downloads MNIST and Fashion-MNIST.
use clap::Args;
use std::path::PathBuf;
use vit_runtime::data::ImageShape;
use vit_runtime::recipe::Dataset;

#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Folder holding `mnist/` and `fashion_mnist/` (default: $VIT_DATA_DIR, else `data`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only this data set; default both.
    #[arg(long, value_parser = parse_dataset)]
    dataset: Option<Dataset>,
}

const DATASETS: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];

fn parse_dataset(name: &str) -> Result<Dataset, String> {
    DATASETS
        .into_iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| format!("unknown data set `{name}`: use `mnist` or `fashion_mnist`"))
}

pub fn data(args: &DataArgs) -> anyhow::Result<()> {
    let datasets = args.dataset.map_or(DATASETS.to_vec(), |d| vec![d]);
    for dataset in datasets {
        let splits =
            vit_runtime::data::load(dataset, args.data_dir.as_deref(), ImageShape::MNIST, 10)?;
        print!("{}", splits.report);
    }
    Ok(())
}
