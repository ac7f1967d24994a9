//! A spec file the repository does not ship becomes a model with no Rust edited: in a copy
//! of the workspace whose `models/` holds only new specs, a shape error in one fails the
//! build at its file:line; fixed, `cargo build` compiles them, `models` lists them, and they
//! train, evaluate and predict. One of them is a 3-channel 32x32 ViT trained on an image
//! folder of generated coloured shapes, which it must learn well above chance.
//!
//! The copy builds in its own target folder under `target/tmp` (kept, so a second run
//! rebuilds only the two crates of the workspace); the first build compiles the
//! dependencies too and takes a few minutes.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The workspace without its specs, build outputs, data and runs, copied to `to`.
fn copy_workspace(to: &Path) {
    let skip = ["target", "data", "runs", ".git", "models"];
    copy_dir(&repo(), to, &skip);
    std::fs::create_dir_all(to.join("models")).unwrap();
}

fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target, &[]);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `cargo build -p vit-runtime --bin vit-runtime` in the copy.
fn build(workspace: &Path) -> Output {
    Command::new(env!("CARGO"))
        .args([
            "build",
            "--offline",
            "-p",
            "vit-runtime",
            "--bin",
            "vit-runtime",
        ])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs")
}

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("new-spec-target")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the copy's binary from `cwd`.
fn binary(cwd: &Path, args: &[&str]) -> Output {
    Command::new(target_dir().join("debug").join("vit-runtime"))
        .args(args)
        .current_dir(cwd)
        .env_remove("VIT_DATA_DIR")
        .output()
        .expect("the built binary runs")
}

/// Runs the copy's binary from `cwd`; it must succeed. Returns stdout.
fn run(cwd: &Path, args: &[&str]) -> String {
    let out = binary(cwd, args);
    assert!(
        out.status.success(),
        "vit-runtime {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs the copy's binary from `cwd`; it must fail with an `error:` line. Returns stderr.
fn run_fails(cwd: &Path, args: &[&str]) -> String {
    let out = binary(cwd, args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "vit-runtime {args:?}:\n{stderr}"
    );
    assert!(stderr.starts_with("error:"), "{stderr}");
    stderr
}

/// A ViT for MNIST that is not among the shipped specs; `heads` 3 does not divide 32.
fn small_vit(heads: usize) -> String {
    format!(
        "\
# A new spec, not shipped with the repository.
name: vit_small
input: {{ channels: 1, height: 28, width: 28 }}
classes: 10
vit:
  tokenizer: conv
  patch: 7
  embed_dim: 32
  depth: 1
  heads: {heads}
  mlp_ratio: 2
  positions: learned
train:
  dataset: mnist
  epochs: 1
  batch_size: 64
  optimizer: {{ kind: adamw, lr: 0.002 }}
"
    )
}

/// A 3-channel 32x32 ViT with a conv tokenizer, on the image folder `shapes` of the data dir.
const SHAPES: &str = "\
name: shapes
input: { channels: 3, height: 32, width: 32 }
classes: 3
vit:
  tokenizer: conv
  patch: 8
  embed_dim: 32
  depth: 2
  heads: 2
  mlp_ratio: 2
  positions: learned
train:
  dataset: { image_folder: shapes }
  epochs: 6
  batch_size: 32
  optimizer: { kind: adamw, lr: 0.003, weight_decay: 0.0001 }
  normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }
";

/// The classes of the generated folder: a colour and a shape each.
const CLASSES: [&str; 3] = ["blue_triangle", "green_disc", "red_square"];

/// A 32x32 RGB picture of class `class` on a noisy grey background, its size, position
/// and colour drawn from `seed`.
fn shape_image(class: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let half = 5 + next(5) as i64;
    let (cx, cy) = (
        half + next((32 - 2 * half) as u64) as i64,
        half + next((32 - 2 * half) as u64) as i64,
    );
    let shade = 150 + next(100) as u8;
    let colour = match class {
        0 => [40, 60, shade],
        1 => [40, shade, 60],
        _ => [shade, 50, 40],
    };
    let mut rgb = Vec::with_capacity(32 * 32 * 3);
    for y in 0..32i64 {
        for x in 0..32i64 {
            let (dx, dy) = (x - cx, y - cy);
            let inside = match class {
                0 => dy.abs() <= half && dx.abs() <= (dy + half) / 2,
                1 => dx * dx + dy * dy <= half * half,
                _ => dx.abs() <= half && dy.abs() <= half,
            };
            let grey = 90 + next(40) as u8;
            rgb.extend(if inside { colour } else { [grey; 3] });
        }
    }
    rgb
}

fn write_png(path: &Path, rgb: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 32, 32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(rgb)
        .unwrap();
}

/// `<data>/shapes/{train,test}/<class>/*.png`: 100 training and 30 test images per class.
fn write_shapes(data: &Path) {
    for (split, count, offset) in [("train", 100, 0), ("test", 30, 10_000)] {
        for (class, name) in CLASSES.iter().enumerate() {
            let dir = data.join("shapes").join(split).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                let seed = (offset + i) as u64 * 3 + class as u64;
                write_png(&dir.join(format!("{i:03}.png")), &shape_image(class, seed));
            }
        }
    }
}

/// The last epoch's test accuracy in a run's metrics log.
fn final_test_accuracy(run: &Path) -> f64 {
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "epoch")
        .find_map(|r| r["test_acc"].as_f64())
        .expect("an epoch finished")
}

#[test]
fn a_new_spec_file_is_a_model_with_no_rust_edited() {
    let tmp = tempfile::tempdir().unwrap();
    let workspace = tmp.path().join("workspace");
    copy_workspace(&workspace);

    std::fs::write(workspace.join("models/vit_small.yaml"), small_vit(3)).unwrap();
    let failed = build(&workspace);
    let stderr = text(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a shape error must fail the build"
    );
    assert!(
        stderr.contains("heads (3) do not divide embed_dim (32)")
            && stderr.contains("--> models/vit_small.yaml:10:10"),
        "the error must point at the spec line:\n{stderr}"
    );

    std::fs::write(workspace.join("models/vit_small.yaml"), small_vit(4)).unwrap();
    std::fs::write(workspace.join("models/shapes.yaml"), SHAPES).unwrap();
    let built = build(&workspace);
    assert!(
        built.status.success(),
        "the fixed specs must build:\n{}",
        text(&built.stderr)
    );

    let table = run(tmp.path(), &["models"]);
    let listed: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, ["shapes", "vit_small"], "{table}");
    assert!(table.contains("3x32x32"), "{table}");

    let data = repo().join("data");
    let small_run = tmp.path().join("runs/vit_small");
    run(
        tmp.path(),
        &[
            "train",
            "vit_small",
            "--quiet",
            "--device",
            "cpu",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            small_run.to_str().unwrap(),
            "--limit-train",
            "512",
            "--limit-test",
            "200",
        ],
    );
    let evaluated = run(
        tmp.path(),
        &[
            "eval",
            "vit_small",
            "--device",
            "cpu",
            "--limit-test",
            "200",
            "--data-dir",
            data.to_str().unwrap(),
            "--checkpoint",
            small_run.join("checkpoint.safetensors").to_str().unwrap(),
        ],
    );
    assert!(evaluated.contains("of 200 images"), "{evaluated}");

    let own_data = tmp.path().join("data");
    write_shapes(&own_data);
    let shapes_run = tmp.path().join("runs/shapes");
    let train_shapes = [
        "train",
        "shapes",
        "--quiet",
        "--device",
        "cpu",
        "--data-dir",
        own_data.to_str().unwrap(),
        "--out",
        shapes_run.to_str().unwrap(),
    ];

    // A test split without one of the classes is refused, naming it, and writes nothing.
    let missing = own_data.join("shapes/test/red_square");
    std::fs::rename(&missing, tmp.path().join("aside")).unwrap();
    let stderr = run_fails(tmp.path(), &train_shapes);
    assert!(stderr.contains("red_square"), "{stderr}");
    assert!(
        !shapes_run.exists(),
        "a refused run must not create its directory"
    );
    std::fs::rename(tmp.path().join("aside"), &missing).unwrap();

    let trained = run(tmp.path(), &train_shapes);
    let accuracy = final_test_accuracy(&shapes_run);
    assert!(
        accuracy > 0.8,
        "3 classes, chance is 33%: the model must learn them, got {:.1}%\n{trained}",
        100.0 * accuracy
    );
    // The confusion matrix names the folder's classes.
    let confusion = std::fs::read_to_string(shapes_run.join("confusion.txt")).unwrap();
    assert!(confusion.contains("green_disc"), "{confusion}");

    let picture = tmp.path().join("disc.png");
    write_png(&picture, &shape_image(1, 777));
    let predicted = run(
        tmp.path(),
        &[
            "predict",
            "shapes",
            "--device",
            "cpu",
            "--top",
            "1",
            "--checkpoint",
            shapes_run.join("checkpoint.safetensors").to_str().unwrap(),
            picture.to_str().unwrap(),
        ],
    );
    assert!(
        predicted.starts_with(&format!("{}: green_disc", picture.display())),
        "{predicted}"
    );
}
