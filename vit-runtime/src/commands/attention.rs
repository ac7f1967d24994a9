//! `attention`: where a trained ViT's class token looks, over a few test images, as a PNG
//! grid (one column per rollout or raw setting) and a safetensors file of the numbers.
use super::{default_checkpoint, flags, model_names, with_model, DeviceCommand};
use anyhow::{bail, Context};
use clap::Args;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use vit_runtime::data::augment::Normalizer;
use vit_runtime::data::Split;
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::dfdx::prelude::*;
use vit_runtime::inspect::{self, export, resample, BlockSpan, Dims, Fusion, RawSpec, View};
use vit_runtime::model::{AttentionRecord, ImageClassifier, Kind, Visitor};
use vit_runtime::recipe::Recipe;
use vit_runtime::train;
use vit_runtime::viz::{self, AttentionGrid, GridRow};

#[derive(Args, Clone)]
pub struct AttentionArgs {
    /// Spec name (see `models`): a ViT; CNNs have no attention.
    #[arg(value_parser = model_names())]
    model: String,
    /// Checkpoint to look into (default: `runs/<model>/checkpoint.safetensors`).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Test images by index, e.g. `0,5,7`: one grid row each, in this order.
    #[arg(long, value_delimiter = ',', conflicts_with = "count")]
    images: Vec<usize>,
    /// Without --images: this many test images, drawn at random with --seed.
    #[arg(long, default_value_t = 6, value_parser = flags::at_least_one)]
    count: usize,
    /// Seed of the random choice of --count images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rollout columns: how each block's heads become one map, any of `mean`, `max`, `min`
    /// (one column each).
    #[arg(long, value_delimiter = ',', default_value = "mean,max,min")]
    fusion: Vec<Fusion>,
    /// Rollout: in each block, the fraction of the lowest fused attention weights set to 0
    /// before rollout, in [0, 1); the class token's own weight is never dropped. A list
    /// (`0,0.9`) gives a column per value.
    #[arg(long, value_delimiter = ',', default_value = "0.9", value_parser = parse_discard)]
    discard: Vec<f64>,
    /// Rollout: the blocks chained, 0-based: `0..3` (end excluded), `4..` (to the last),
    /// `2` (one block), `all`. A list (`0..1,4..`) gives a column per range.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    blocks: Vec<BlockSpan>,
    /// Raw attention columns (one block, no rollout): BLOCK:HEAD, BLOCK a number or `last`,
    /// HEAD a number or `mean`/`max`/`min` of the heads; e.g. `5:0,last:mean`.
    #[arg(long, value_delimiter = ',', default_value = "last:mean")]
    raw: Vec<RawSpec>,
    /// No raw column (only rollout columns).
    #[arg(long, conflicts_with = "raw")]
    no_raw: bool,
    /// No rollout column (only the --raw columns).
    #[arg(long)]
    no_rollout: bool,
    /// Output PNG (default: `attention.png` beside the checkpoint); the numbers go beside it
    /// with the extension `.safetensors`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to run: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto`.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Folder holding `mnist/`, `fashion_mnist/` and relative image-folder roots
    /// (default: $VIT_DATA_DIR, else `data`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn parse_discard(s: &str) -> Result<f64, String> {
    let ratio: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    inspect::rollout::check_discard(ratio)
        .map(|()| ratio)
        .map_err(|e| e.to_string())
}

impl DeviceCommand for AttentionArgs {
    fn device(&self) -> DeviceChoice {
        self.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        with_model::<D, _>(&self.model, Attention(self))?
    }
}

struct Attention<'a>(&'a AttentionArgs);

impl<D: SeededDevice> Visitor<D> for Attention<'_> {
    type Output = anyhow::Result<()>;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        run::<M, C, H, W, K, D>(self.0)
    }
}

fn run<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    args: &AttentionArgs,
) -> anyhow::Result<()>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let s = M::SUMMARY;
    if s.kind != Kind::Vit {
        let vits: Vec<&str> = vit_runtime::models::NAMES
            .iter()
            .copied()
            .filter(|name| with_model::<D, _>(name, IsVit).unwrap_or(false))
            .collect();
        bail!(
            "`{}` is a CNN: it has no attention maps; use a ViT spec ({})",
            M::NAME,
            vits.join(", ")
        );
    }
    let dims = Dims {
        blocks: s.depth,
        heads: s.heads,
        tokens: s.tokens,
    };
    let views = views(args, dims)?;
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| default_checkpoint(M::NAME));
    if !checkpoint.exists() {
        bail!(
            "no checkpoint at {}: train one with `vit-runtime train {}`, or pass --checkpoint",
            checkpoint.display(),
            M::NAME
        );
    }
    let out = output_path(args, &checkpoint)?;
    let recipe = M::RECIPE;
    let sample = sample::<C, H, W, K>(args, &recipe)?;
    let dev = D::seeded(0)?;
    let (model, state) = train::load_for_eval::<M, C, H, W, K, D>(&checkpoint, &dev)?;
    let (predictions, record) = look::<M, C, H, W, K, D>(&model, &sample, recipe.normalize, &dev)?;
    let maps = inspect::class_maps(&record, &views)?;

    let rows = grid_rows::<H, W>(&sample, &predictions, &maps, record.grid);
    let correct = rows.iter().filter(|r| r.correct).count();
    let grid = AttentionGrid {
        title: format!(
            "{}: where the class token looks ({} test images)",
            M::NAME,
            recipe.dataset.name()
        ),
        subtitle: vec![
            format!(
                "checkpoint {} (epoch {}); {correct} of {} predicted right (wrong ones in red)",
                checkpoint.display(),
                state.epoch,
                rows.len()
            ),
            "rollout: heads fused per block, lowest weights discarded, identity added, rows renormalised, blocks multiplied".into(),
        ],
        headers: views.iter().map(|v| v.header(dims.blocks)).collect(),
        rows,
        size: (H, W),
    };
    viz::plot_attention(&out, &grid)?;

    let columns: Vec<String> = grid.headers.iter().map(|h| h.join(", ")).collect();
    let images: Vec<f32> = grid.rows.iter().flat_map(|r| r.image.clone()).collect();
    let numbers = out.with_extension("safetensors");
    export::write(
        &numbers,
        &export::Export {
            record: &record,
            columns: &columns,
            maps: &maps,
            images: &images,
            image_size: (H, W),
            indices: &sample.indices,
            labels: &sample.labels,
            predictions: &predictions,
            metadata: vec![
                ("model".into(), M::NAME.into()),
                ("checkpoint".into(), checkpoint.display().to_string()),
                ("epoch".into(), state.epoch.to_string()),
                ("dataset".into(), recipe.dataset.name().into()),
            ],
        },
    )?;
    for (row, &index) in grid.rows.iter().zip(&sample.indices) {
        println!("test #{index}: {}, {}", row.label[1], row.label[2]);
    }
    println!("columns: {}", columns.join(" | "));
    println!("wrote {} and {}", out.display(), numbers.display());
    Ok(())
}

/// The chosen test images: their places in the test set, pixels, labels and class names.
struct Sample {
    indices: Vec<usize>,
    pixels: Vec<Vec<u8>>,
    labels: Vec<usize>,
    classes: Vec<String>,
}

/// Loads the test set and picks the images of `--images` / `--count`.
fn sample<const C: usize, const H: usize, const W: usize, const K: usize>(
    args: &AttentionArgs,
    recipe: &Recipe,
) -> anyhow::Result<Sample> {
    let splits = train::load_data::<C, H, W, K>(recipe, args.data_dir.as_deref())?;
    let test = splits.test;
    let indices = choose_images(args, &test, recipe.dataset.name())?;
    let pixels = indices
        .iter()
        .map(|&i| test.image(i).map(<[u8]>::to_vec))
        .collect::<Option<Vec<_>>>()
        .context("image indices were checked against the test set")?;
    let labels = indices
        .iter()
        .map(|&i| test.label(i).map(usize::from))
        .collect::<Option<Vec<_>>>()
        .context("image indices were checked against the test set")?;
    Ok(Sample {
        indices,
        pixels,
        labels,
        classes: splits.classes,
    })
}

/// The model's predictions and attention maps for the sample, normalised as in training.
fn look<M, const C: usize, const H: usize, const W: usize, const K: usize, D>(
    model: &M,
    sample: &Sample,
    normalize: vit_runtime::recipe::Normalize,
    dev: &D,
) -> anyhow::Result<(Vec<usize>, AttentionRecord)>
where
    D: SeededDevice,
    M: ImageClassifier<C, H, W, K, D>,
{
    let norm = Normalizer::new(normalize, C)?;
    let input: Vec<f32> = sample
        .pixels
        .iter()
        .flat_map(|p| norm.apply_image(p))
        .collect();
    let shape = (sample.indices.len(), Const::<C>, Const::<H>, Const::<W>);
    let x = dev.tensor_from_vec(input, shape);
    let predictions = model
        .predict(x.clone())
        .as_vec()
        .chunks(K)
        .map(train::loss::argmax)
        .collect();
    let record = model
        .attention(x)
        .with_context(|| format!("`{}` returned no attention maps", M::NAME))?;
    Ok((predictions, record))
}

/// One grid row per image: its label lines, pixels and display maps (upsampled to the image,
/// scaled to [0, 1]). `maps` is `(images, columns, grid)` as [`inspect::class_maps`] gives.
fn grid_rows<const H: usize, const W: usize>(
    sample: &Sample,
    predictions: &[usize],
    maps: &[f32],
    grid: (usize, usize),
) -> Vec<GridRow> {
    let name = |k: usize| sample.classes.get(k).map_or("?", String::as_str);
    let per_image = maps.len() / sample.indices.len().max(1);
    sample
        .indices
        .iter()
        .zip(maps.chunks(per_image.max(1)))
        .enumerate()
        .map(|(b, (&index, image_maps))| GridRow {
            label: vec![
                format!("test #{index}"),
                format!("true: {}", name(sample.labels[b])),
                format!("pred: {}", name(predictions[b])),
            ],
            correct: sample.labels[b] == predictions[b],
            image: grey(&sample.pixels[b], H * W),
            maps: image_maps
                .chunks(grid.0 * grid.1)
                .map(|map| {
                    let mut up = resample::upsample_bilinear(map, grid, (H, W));
                    resample::normalise_unit(&mut up);
                    up
                })
                .collect(),
        })
        .collect()
}

/// An image of any channel count (channel-major bytes) as grey values in [0, 1]: the mean
/// of its channels, so that the heat maps stay readable over it.
fn grey(pixels: &[u8], plane: usize) -> Vec<f32> {
    let channels = (pixels.len() / plane.max(1)).max(1);
    (0..plane)
        .map(|i| {
            let sum: f32 = (0..channels)
                .map(|c| f32::from(pixels.get(c * plane + i).copied().unwrap_or(0)))
                .sum();
            sum / (255.0 * channels as f32)
        })
        .collect()
}

/// The grid's columns, checked against the model before anything is loaded.
fn views(args: &AttentionArgs, dims: Dims) -> anyhow::Result<Vec<View>> {
    let fusions: &[Fusion] = if args.no_rollout { &[] } else { &args.fusion };
    let raws: &[RawSpec] = if args.no_raw { &[] } else { &args.raw };
    let views = View::columns(fusions, &args.discard, &args.blocks, raws);
    if views.is_empty() {
        bail!("no columns to draw: --no-rollout and --no-raw leave nothing");
    }
    for view in &views {
        view.check(dims)?;
    }
    Ok(views)
}

/// Whether the visited model is a ViT.
struct IsVit;

impl<D: SeededDevice> Visitor<D> for IsVit {
    type Output = bool;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(self) -> bool
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        M::SUMMARY.kind == Kind::Vit
    }
}

/// `--images`, or `--count` indices drawn with `--seed`, all within the test set.
fn choose_images(args: &AttentionArgs, test: &Split, dataset: &str) -> anyhow::Result<Vec<usize>> {
    let len = test.len();
    if !args.images.is_empty() {
        if let Some(&bad) = args.images.iter().find(|&&i| i >= len) {
            bail!(
                "image index {bad} is out of range: the {dataset} test set has {len} images (indices 0 to {})",
                len - 1
            );
        }
        return Ok(args.images.clone());
    }
    if args.count > len {
        bail!(
            "--count {} must be between 1 and the {len} test images",
            args.count
        );
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let mut chosen = rand::seq::index::sample(&mut rng, len, args.count).into_vec();
    chosen.sort_unstable();
    Ok(chosen)
}

/// `--out`, or `attention.png` beside the checkpoint; its folder is created.
fn output_path(args: &AttentionArgs, checkpoint: &Path) -> anyhow::Result<PathBuf> {
    let out = args.out.clone().unwrap_or_else(|| {
        checkpoint
            .parent()
            .unwrap_or(Path::new(""))
            .join("attention.png")
    });
    if out.extension().and_then(|e| e.to_str()) != Some("png") {
        bail!("--out {} must end in .png", out.display());
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(out)
}
