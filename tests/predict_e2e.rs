//! `predict` end to end: on PNGs written from Fashion-MNIST test images it gives the classes
//! `eval` gives those images (the same accuracy, and image by image the classes of the model
//! loaded here), names them by the checkpoint's class names, and refuses bad files by name.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vit_runtime::data::augment::Normalizer;
use vit_runtime::data::ImageShape;
use vit_runtime::dfdx::prelude::*;
use vit_runtime::model::{ImageClassifier, ModelSpec};
use vit_runtime::models::LightvitFashion;
use vit_runtime::recipe::Dataset;

const BIN: &str = env!("CARGO_BIN_EXE_vit-runtime");
const IMAGES: usize = 40;

fn data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data"))
}

fn cli(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("VIT_DATA_DIR")
        .output()
        .expect("the binary runs")
}

fn succeed(cwd: &Path, args: &[&str]) -> String {
    let out = cli(cwd, args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_grey_png(path: &Path, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 28, 28);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(pixels).unwrap();
}

#[test]
fn predict_on_pngs_gives_the_classes_eval_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = data();
    let data_dir = data_dir.to_str().unwrap();
    let run = tmp.path().join("run");
    succeed(
        tmp.path(),
        &[
            "train",
            "lightvit_fashion",
            "--quiet",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--limit-train",
            "3000",
            "--limit-test",
            "100",
            "--data-dir",
            data_dir,
            "--out",
            run.to_str().unwrap(),
        ],
    );
    let checkpoint = run.join("checkpoint.safetensors");

    let splits =
        vit_runtime::data::load(Dataset::FashionMnist, Some(&data()), ImageShape::MNIST, 10)
            .unwrap();
    let files: Vec<PathBuf> = (0..IMAGES)
        .map(|i| {
            let path = tmp.path().join(format!("test-{i:02}.png"));
            write_grey_png(&path, splits.test.image(i).unwrap());
            path
        })
        .collect();

    let mut args = vec![
        "predict",
        "lightvit_fashion",
        "--device",
        "cpu",
        "--json",
        "--top",
        "2",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let json: serde_json::Value = serde_json::from_str(&succeed(tmp.path(), &args)).unwrap();
    let predictions = json.as_array().expect("one object per image");
    assert_eq!(predictions.len(), IMAGES);
    let predicted: Vec<usize> = predictions
        .iter()
        .map(|p| p["top"][0]["index"].as_u64().unwrap() as usize)
        .collect();
    for p in predictions {
        let (first, second) = (&p["top"][0], &p["top"][1]);
        assert!(
            first["probability"].as_f64() >= second["probability"].as_f64(),
            "{p}"
        );
    }
    // Classes are named by the checkpoint (Fashion-MNIST's names).
    let names = Dataset::FashionMnist.known_class_names().unwrap();
    assert_eq!(
        predictions[0]["top"][0]["class"].as_str(),
        Some(names[predicted[0]])
    );

    // The model loaded here, on the IDX pixels, predicts the same classes.
    type Model = LightvitFashion<f32, Cpu>;
    let dev = Cpu::default();
    let (model, _) =
        vit_runtime::train::load_for_eval::<Model, 1, 28, 28, 10, Cpu>(&checkpoint, &dev).unwrap();
    let norm = Normalizer::new(Model::RECIPE.normalize, 1).unwrap();
    let pixels: Vec<f32> = (0..IMAGES)
        .flat_map(|i| norm.apply_image(splits.test.image(i).unwrap()))
        .collect();
    let x = dev.tensor_from_vec(pixels, (IMAGES, Const::<1>, Const::<28>, Const::<28>));
    let logits = model.predict(x).as_vec();
    let expected: Vec<usize> = logits
        .chunks(10)
        .map(vit_runtime::train::loss::argmax)
        .collect();
    assert_eq!(predicted, expected);

    // And `eval` on the same images reports the accuracy of those predictions.
    let correct = (0..IMAGES)
        .filter(|&i| usize::from(splits.test.label(i).unwrap()) == predicted[i])
        .count();
    let limit = IMAGES.to_string();
    let evaluated = succeed(
        tmp.path(),
        &[
            "eval",
            "lightvit_fashion",
            "--device",
            "cpu",
            "--data-dir",
            data_dir,
            "--limit-test",
            &limit,
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
    );
    let accuracy = format!(
        "overall accuracy {:.2}% of {IMAGES} images",
        100.0 * correct as f64 / IMAGES as f64
    );
    assert!(
        evaluated.contains(&accuracy),
        "expected `{accuracy}` in:\n{evaluated}"
    );

    // Bad files are refused by name, before the model runs.
    let small = tmp.path().join("small.png");
    let file = std::fs::File::create(&small).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 14, 14);
    encoder.set_color(png::ColorType::Grayscale);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&[0; 196])
        .unwrap();
    let notes = tmp.path().join("notes.png");
    std::fs::write(&notes, "not a picture").unwrap();
    for (bad, says) in [(&small, "14x14"), (&notes, "notes.png")] {
        let out = cli(
            tmp.path(),
            &[
                "predict",
                "lightvit_fashion",
                "--device",
                "cpu",
                "--checkpoint",
                checkpoint.to_str().unwrap(),
                files[0].to_str().unwrap(),
                bad.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.starts_with("error:")
                && stderr.contains(bad.to_str().unwrap())
                && stderr.contains(says),
            "{stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "nothing is predicted when a file is bad"
        );
    }
}
