//! `predict`: the most likely classes of image files, by a trained model.
use super::{flags, load_model, model_names, weight_file, with_model, DeviceCommand};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use vit_runtime::data::augment::Normalizer;
use vit_runtime::data::{image_folder, ImageShape};
use vit_runtime::device::{DeviceChoice, SeededDevice};
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{ImageClassifier, Visitor};
use vit_runtime::recipe::Dataset;

#[derive(Args, Clone, Debug)]
pub struct PredictArgs {
    /// Spec name (see `models`).
    #[arg(value_parser = model_names())]
    model: String,
    /// Image files (PNG or JPEG) of the model's input size, converted to its channels
    /// (grey or RGB); resized first if the spec's image folder says `resize: true`.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    /// Checkpoint to predict with (default: `runs/<model>/checkpoint.safetensors`).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Predict with these weights instead of a checkpoint (a safetensors file with the
    /// model's timm tensor names); classes are then named by the spec's data set, if it
    /// names them, else by number.
    #[arg(long, value_name = "PATH", conflicts_with = "checkpoint")]
    weights: Option<PathBuf>,
    /// With --weights: adapt weights made for other sizes as timm does (position
    /// embeddings resampled to this model's patch grid, patch kernels to its patch size and
    /// channel count, a fresh head for another class count); every change is listed.
    #[arg(long, requires = "weights")]
    adapt: bool,
    /// How many classes to list per image, most likely first.
    #[arg(long, default_value_t = 3, value_parser = flags::at_least_one)]
    top: usize,
    /// Print one JSON document instead of lines: an array with one object per image, each
    /// class with its index, name, probability and logit.
    #[arg(long)]
    json: bool,
    /// Where to run: `cpu`, `cuda` (needs a build with `--features cuda`), or `auto`.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
}

impl DeviceCommand for PredictArgs {
    fn device(&self) -> DeviceChoice {
        self.device
    }

    fn run<D: SeededDevice>(&self) -> anyhow::Result<()> {
        let predictions = with_model::<D, _>(&self.model, Predict(self))??;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&predictions)?);
        } else {
            for p in &predictions {
                let top: Vec<String> = p
                    .top
                    .iter()
                    .map(|c| format!("{} {:.2}%", c.class, 100.0 * c.probability))
                    .collect();
                println!("{}: {}", p.file, top.join(", "));
            }
        }
        Ok(())
    }
}

/// The classes of one image, most likely first.
#[derive(Debug, Serialize)]
struct Prediction {
    file: String,
    top: Vec<Class>,
}

#[derive(Debug, Serialize)]
struct Class {
    /// The label (index of the class).
    index: usize,
    class: String,
    probability: f32,
    /// The model's output for the class, before the softmax.
    logit: f32,
}

struct Predict<'a>(&'a PredictArgs);

impl<D: SeededDevice> Visitor<D> for Predict<'_> {
    type Output = anyhow::Result<Vec<Prediction>>;

    fn visit<M, const C: usize, const H: usize, const W: usize, const K: usize>(
        self,
    ) -> Self::Output
    where
        M: ImageClassifier<C, H, W, K, D>,
    {
        let args = self.0;
        let recipe = M::RECIPE;
        let shape = ImageShape {
            channels: C,
            height: H,
            width: W,
        };
        let resize = matches!(recipe.dataset, Dataset::ImageFolder(f) if f.resize);
        // Every file is read and checked before the model runs: a bad one names itself.
        let pixels = args
            .images
            .iter()
            .map(|path| image_folder::read_image(path, shape, resize))
            .collect::<Result<Vec<_>, _>>()?;

        let dev = D::seeded(0)?;
        let loaded = load_model::<M, C, H, W, K, D>(
            weight_file(&args.weights, args.adapt).as_ref(),
            args.checkpoint.as_deref(),
            &dev,
        )?;
        let names = class_names(loaded.classes, recipe.dataset, K);

        let norm = Normalizer::new(recipe.normalize, C)?;
        let input: Vec<f32> = pixels.iter().flat_map(|p| norm.apply_image(p)).collect();
        let x = dev.tensor_from_vec(input, (pixels.len(), Const::<C>, Const::<H>, Const::<W>));
        let logits = loaded.model.predict(x).as_vec();
        Ok(args
            .images
            .iter()
            .zip(logits.chunks(K))
            .map(|(path, logits)| Prediction {
                file: path.display().to_string(),
                top: top_classes(logits, args.top)
                    .into_iter()
                    .map(|(index, probability)| Class {
                        index,
                        class: names[index].clone(),
                        probability,
                        logit: logits[index],
                    })
                    .collect(),
            })
            .collect())
    }
}

/// The checkpoint's class names; for plain weights, those of the spec's data set if it
/// names them, else `class 0`, `class 1`...
fn class_names(saved: Vec<String>, dataset: Dataset, k: usize) -> Vec<String> {
    if saved.len() == k {
        return saved;
    }
    match dataset.known_class_names() {
        Some(names) if names.len() == k => names.iter().map(|n| n.to_string()).collect(),
        _ => (0..k).map(|i| format!("class {i}")).collect(),
    }
}

/// The `n` most likely classes under the softmax of `logits`: `(index, probability)`.
fn top_classes(logits: &[f32], n: usize) -> Vec<(usize, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    let mut ranked: Vec<(usize, f32)> = exp.iter().map(|&e| e / sum).enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(n);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_classes_are_the_softmax_ranked_and_cut() {
        let top = top_classes(&[0.0, 2.0, 1.0], 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2]);
        let e = [1.0f32, 2.0f32.exp(), 1.0f32.exp()];
        let sum: f32 = e.iter().sum();
        assert!((top[0].1 - e[1] / sum).abs() < 1e-6);
        assert_eq!(top_classes(&[0.0; 3], 5).len(), 3);
    }

    #[test]
    fn classes_fall_back_to_the_data_set_then_to_numbers() {
        let saved = vec!["cat".to_string(), "dog".to_string()];
        assert_eq!(class_names(saved, Dataset::Mnist, 2), ["cat", "dog"]);
        assert_eq!(class_names(Vec::new(), Dataset::Mnist, 10)[3], "3");
        let folder = Dataset::ImageFolder(vit_runtime::recipe::ImageFolder {
            root: "x",
            resize: false,
        });
        assert_eq!(class_names(Vec::new(), folder, 2), ["class 0", "class 1"]);
    }
}
