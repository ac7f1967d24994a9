//! The real MNIST and Fashion-MNIST files: counts, label histograms, a pixel checksum, and
//! the loader's determinism on them.
//!
//! Needs the files: run `scripts/fetch-data.sh` first (CI does). The data dir is
//! `$VIT_DATA_DIR` if set, else `data/` at the repository root; nothing is downloaded here.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use dfdx::shapes::HasShape;
use dfdx::tensor::Cpu;
use vit_runtime::data::{DataSource, ImageShape, Loader, LoaderConfig, Origin, Split, Splits};
use vit_runtime::recipe::{Augment, Dataset, Normalize};

fn source() -> DataSource {
    let data_dir = std::env::var_os("VIT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"));
    DataSource {
        data_dir,
        system_dirs: true,
        download: false,
    }
}

/// Each data set is decoded and verified once per test binary.
fn splits(dataset: Dataset) -> &'static Splits {
    static MNIST: OnceLock<Splits> = OnceLock::new();
    static FASHION: OnceLock<Splits> = OnceLock::new();
    let cell = match dataset {
        Dataset::Mnist => &MNIST,
        Dataset::FashionMnist => &FASHION,
        Dataset::ImageFolder(_) => unreachable!("only the IDX data sets are tested here"),
    };
    cell.get_or_init(|| match source().load(dataset, ImageShape::MNIST, 10) {
        Ok(splits) => splits,
        Err(e) => panic!(
            "{} data missing or damaged; run `scripts/fetch-data.sh` from the repository root \
             first.\n{e}",
            dataset.name()
        ),
    })
}

fn train(dataset: Dataset) -> Arc<Split> {
    Arc::new(splits(dataset).train.clone())
}

#[test]
fn mnist_has_official_counts_and_label_histograms() {
    let s = splits(Dataset::Mnist);
    assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
    assert_eq!((s.train.rows(), s.train.cols()), (28, 28));
    assert_eq!(
        s.train.label_histogram(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        s.test.label_histogram(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

#[test]
fn fashion_mnist_has_official_counts_and_balanced_classes() {
    let s = splits(Dataset::FashionMnist);
    assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
    assert_eq!((s.test.rows(), s.test.cols()), (28, 28));
    assert_eq!(s.train.label_histogram(), [6000; 10]);
    assert_eq!(s.test.label_histogram(), [1000; 10]);
}

#[test]
fn splits_name_their_classes() {
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_eq!(splits(Dataset::Mnist).classes, digits);
    let fashion = &splits(Dataset::FashionMnist).classes;
    assert_eq!(fashion.len(), 10);
    assert_eq!(
        (fashion[0].as_str(), fashion[9].as_str()),
        ("T-shirt/top", "Ankle boot")
    );
    assert_eq!(splits(Dataset::Mnist).train.channels(), 1);
}

/// Cross-checked with an independent reader: python3's `gzip` + `struct` on the same files
/// gave first labels 5 and 9 and first-image pixel sums 27525 and 76247 (and whole-train
/// pixel sums 1567298545 and 3431114169, i.e. means 0.1307 and 0.2860 of 255, the
/// normalisation constants everyone quotes for these data sets).
#[test]
fn first_training_images_have_known_pixel_sums() {
    for (dataset, label, first_sum, total) in [
        (Dataset::Mnist, 5, 27525u64, 1_567_298_545u64),
        (Dataset::FashionMnist, 9, 76247, 3_431_114_169),
    ] {
        let train = &splits(dataset).train;
        let image = train.image(0).expect("60,000 images");
        let sum: u64 = image.iter().map(|&p| u64::from(p)).sum();
        assert_eq!(
            (train.label(0), sum),
            (Some(label), first_sum),
            "{dataset:?}"
        );
        let all: u64 = train.pixels().iter().map(|&p| u64::from(p)).sum();
        assert_eq!(all, total, "{dataset:?}");
    }
}

#[test]
fn report_lists_four_verified_files_with_their_counts() {
    let report = &splits(Dataset::Mnist).report;
    let counts: Vec<usize> = report.files().iter().map(|f| f.count).collect();
    assert_eq!(counts, [60_000, 60_000, 10_000, 10_000]);
    assert!(report
        .files()
        .iter()
        .all(|f| f.origin != Origin::Downloaded));
    let text = report.to_string();
    assert!(
        text.contains("train-images-idx3-ubyte") && text.contains("SHA-256 OK"),
        "{text}"
    );
}

fn vit_config(seed: u64) -> LoaderConfig {
    LoaderConfig {
        batch_size: 128,
        seed,
        shuffle: true,
        augment: Augment {
            random_crop: Some((28, 2)),
            horizontal_flip: true,
        },
        normalize: Normalize {
            mean: &[0.5],
            std: &[0.5],
        },
        prefetch: 4,
    }
}

#[test]
fn same_seed_and_epoch_give_identical_batches_whatever_the_thread() {
    let split = train(Dataset::Mnist);
    let a = Loader::new(split.clone(), vit_config(42)).expect("valid config");
    // A fresh loader, as after a restart: nothing carried over but the seed.
    let b = Loader::new(split, vit_config(42)).expect("valid config");
    assert_eq!(a.order(3), b.order(3));
    let threaded: Vec<_> = a.epoch(3).take(5).map(|b| b.expect("batch")).collect();
    for (i, batch) in threaded.iter().enumerate() {
        assert_eq!(Some(batch), b.batch(3, i).as_ref(), "batch {i} of epoch 3");
    }
}

#[test]
fn other_epoch_or_seed_gives_other_order_and_augmentation() {
    let split = train(Dataset::Mnist);
    let a = Loader::new(split.clone(), vit_config(42)).expect("valid config");
    let b = Loader::new(split.clone(), vit_config(43)).expect("valid config");
    assert_ne!(a.order(0), a.order(1));
    assert_ne!(a.order(0), b.order(0));
    // Unshuffled, batch 0 holds the same examples every epoch: only the augmentation moves.
    let cfg = LoaderConfig {
        shuffle: false,
        ..vit_config(42)
    };
    let fixed = Loader::new(split, cfg).expect("valid config");
    let (e0, e1) = (
        fixed.batch(0, 0).expect("b0"),
        fixed.batch(1, 0).expect("b0"),
    );
    assert_eq!(e0.indices(), e1.indices());
    assert_ne!(e0.pixels(), e1.pixels());
}

#[test]
fn every_training_example_appears_once_per_epoch_and_last_batch_is_kept() {
    let loader = Loader::new(train(Dataset::FashionMnist), vit_config(7)).expect("valid");
    assert_eq!(loader.len(), 469);
    let mut seen = HashSet::new();
    let mut sizes = Vec::new();
    for batch in loader.epoch(2) {
        let batch = batch.expect("batch");
        sizes.push(batch.len());
        for &i in batch.indices() {
            assert!(seen.insert(i), "example {i} twice in epoch 2");
        }
    }
    assert_eq!(seen.len(), 60_000);
    assert_eq!(sizes.len(), 469);
    assert_eq!(sizes.last(), Some(&(60_000 - 468 * 128)));
}

#[test]
fn augmented_batches_have_model_shape_and_normalised_range() {
    let split = train(Dataset::Mnist);
    let loader = Loader::new(split.clone(), vit_config(1)).expect("valid");
    assert_eq!(loader.image_dims(), (1, 28, 28));
    let batch = loader.batch(0, 0).expect("batch 0");
    assert_eq!(batch.pixels().len(), 128 * 28 * 28);
    assert!(batch.pixels().iter().all(|v| (-1.0..=1.0).contains(v)));
    // Labels follow their images through the shuffle.
    for (&i, &label) in batch.indices().iter().zip(batch.labels()) {
        assert_eq!(split.label(i as usize), Some(label));
    }
    // Crop and flip move pixels but keep (almost) all the ink: a 2-pixel shift can only
    // push out MNIST's near-empty border.
    let mut moved = 0;
    for (k, &i) in batch.indices().iter().enumerate() {
        let src = split.image(i as usize).expect("index in range");
        let out = &batch.pixels()[k * 784..(k + 1) * 784];
        let ink_in: f32 = src.iter().map(|&p| f32::from(p) / 255.0).sum();
        let ink_out: f32 = out.iter().map(|v| (v * 0.5) + 0.5).sum();
        assert!(
            ink_out <= ink_in + 1e-2 && ink_out > 0.9 * ink_in,
            "example {i}"
        );
        let plain: Vec<f32> = src
            .iter()
            .map(|&p| (f32::from(p) / 255.0 - 0.5) / 0.5)
            .collect();
        moved += usize::from(plain != out);
    }
    // Identity needs offset (2, 2) and no flip: 1/25 * 1/2 of the examples.
    assert!(moved > 110, "only {moved} of 128 images augmented");

    let dev = Cpu::default();
    let x = batch.images::<_, 1, 28, 28>(&dev).expect("28 x 28");
    assert_eq!(x.shape().0, 128);
    assert!(batch.images::<_, 1, 32, 32>(&dev).is_err());
}

#[test]
fn eval_batches_keep_file_order_and_pixels() {
    let s = splits(Dataset::FashionMnist)
        .clone()
        .limit(None, Some(1000));
    let mut cfg = vit_config(0);
    cfg.shuffle = false;
    cfg.augment = Augment::default();
    let loader = Loader::new(Arc::new(s.test), cfg).expect("valid");
    assert_eq!(loader.len(), 8); // 7 full batches and 104 examples kept in the last
    let batches: Vec<_> = loader.epoch(0).map(|b| b.expect("batch")).collect();
    assert_eq!(batches.last().map(|b| b.len()), Some(1000 - 7 * 128));
    let indices: Vec<u32> = batches.iter().flat_map(|b| b.indices().to_vec()).collect();
    assert_eq!(indices, (0..1000).collect::<Vec<u32>>());
    // Undoing (x / 255 - 0.5) / 0.5 gives back the raw pixels of the file.
    let first = &splits(Dataset::FashionMnist).test;
    let raw: Vec<u8> = batches[0].pixels()[..784]
        .iter()
        .map(|v| ((v * 0.5 + 0.5) * 255.0).round() as u8)
        .collect();
    assert_eq!(Some(raw.as_slice()), first.image(0));
}

#[test]
fn limits_keep_the_first_examples() {
    let s = splits(Dataset::Mnist).clone().limit(Some(1000), Some(10));
    assert_eq!((s.train.len(), s.test.len()), (1000, 10));
    assert_eq!(s.train.pixels().len(), 1000 * 784);
    assert_eq!(s.train.label(0), Some(5));
    assert_eq!(
        s.test.labels(),
        splits(Dataset::Mnist).test.labels().get(..10).expect("10")
    );
}
