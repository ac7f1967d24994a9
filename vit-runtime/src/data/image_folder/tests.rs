//! Image folders written with the `image` crate into temporary folders: good ones load
//! with the right labels, names and pixels; every bad one is an error naming its culprit.

use std::fs;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, Rgb, RgbImage};

use super::*;
use crate::data::source::DataSource;
use crate::recipe::ImageFolder;

fn rgb(height: usize, width: usize) -> ImageShape {
    ImageShape {
        channels: 3,
        height,
        width,
    }
}

fn grey(height: usize, width: usize) -> ImageShape {
    ImageShape {
        channels: 1,
        height,
        width,
    }
}

/// Dataset of an image folder at `root` (leaked: a recipe's root is `'static`).
fn dataset(root: &str, resize: bool) -> Dataset {
    Dataset::ImageFolder(ImageFolder {
        root: Box::leak(root.to_string().into_boxed_str()),
        resize,
    })
}

/// Loads `root` as a model of `shape` with `classes` classes would.
fn load_at(
    root: &Path,
    resize: bool,
    shape: ImageShape,
    classes: usize,
) -> Result<Splits, DataError> {
    let root_text = root.display().to_string();
    load(dataset(&root_text, resize), root, resize, shape, classes)
}

fn save(path: &Path, image: impl Into<DynamicImage>) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).expect("mkdir");
    }
    image.into().save(path).expect("encode test image");
}

/// A 4 x 3 (W x H) RGB image: red = `marker`, green = 10 x column, blue = 10 x row.
fn marked(marker: u8) -> RgbImage {
    RgbImage::from_fn(4, 3, |x, y| Rgb([marker, 10 * x as u8, 10 * y as u8]))
}

/// `<tmp>/train|test/<class>/img{1,10,2}.png` for classes created in the order given; the
/// red channel of each image is `10 * class creation index + file number`.
fn folder(classes: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for split in ["train", "test"] {
        for (k, class) in classes.iter().enumerate() {
            for n in [2u8, 10, 1] {
                let path = dir
                    .path()
                    .join(split)
                    .join(class)
                    .join(format!("img{n}.png"));
                save(&path, marked(10 * k as u8 + n));
            }
        }
    }
    dir
}

/// The error of loading `root` as a 3-class 3 x 4 RGB model, checked to name `culprit`.
fn error_naming(root: &Path, culprit: &Path) -> String {
    let err = load_at(root, false, rgb(3, 4), 3).expect_err("a bad folder");
    let msg = err.to_string();
    assert!(
        msg.contains(&culprit.display().to_string()),
        "does not name {}: {msg}",
        culprit.display()
    );
    msg
}

#[test]
fn rgb_folder_loads_sorted_classes_labels_and_channel_major_pixels() {
    let dir = folder(&["cat", "ant", "bee"]);
    // Hidden files are skipped; extensions are case-insensitive.
    fs::write(dir.path().join("train/ant/.DS_Store"), b"junk").expect("write");
    save(&dir.path().join("train/bee/IMG0.PNG"), marked(99));
    let splits = load_at(dir.path(), false, rgb(3, 4), 3).expect("a good folder");
    assert_eq!(splits.classes, ["ant", "bee", "cat"]);
    let train = &splits.train;
    assert_eq!(
        (train.len(), train.classes(), train.shape()),
        (10, 3, rgb(3, 4))
    );
    assert_eq!(train.labels(), [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
    assert_eq!(train.label_histogram(), [3, 4, 3]);
    // ant was created second (k = 1); its files in name order: img1, img10, img2.
    let reds: Vec<u8> = (0..3)
        .filter_map(|i| train.image(i).map(|p| p[0]))
        .collect();
    assert_eq!(reds, [11, 20, 12]);
    // bee: IMG0.PNG sorts before img* (upper case first, as Python sorts).
    assert_eq!(train.image(3).map(|p| p[0]), Some(99));
    // Channel after channel: plane 1 is green (10 x column), plane 2 blue (10 x row).
    let image = train.image(9).expect("10 images");
    let (plane, at) = (12, |y: usize, x: usize| y * 4 + x);
    assert_eq!(image[at(2, 3)], 2);
    assert_eq!(image[plane + at(2, 3)], 30);
    assert_eq!(image[2 * plane + at(2, 3)], 20);
    assert_eq!(splits.test.len(), 9);

    let again = load_at(dir.path(), false, rgb(3, 4), 3).expect("a good folder");
    assert_eq!((&again.train, &again.test), (&splits.train, &splits.test));
    let text = splits.report.to_string();
    assert!(text.contains("ant 3, bee 4, cat 3"), "{text}");
    assert!(text.contains("(10 x 3 x 3 x 4 bytes)"), "{text}");
}

#[test]
fn one_channel_models_get_grey_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let colour = Rgb([200u8, 100, 50]);
    for split in ["train", "test"] {
        save(
            &dir.path().join(split).join("only/a.png"),
            RgbImage::from_pixel(4, 3, colour),
        );
    }
    let splits = load_at(dir.path(), false, grey(3, 4), 1).expect("a good folder");
    // Rec. 709, rounded: 0.2126 * 200 + 0.7152 * 100 + 0.0722 * 50 = 117.65 (PIL's Rec. 601
    // would give 124).
    assert_eq!(splits.train.image(0), Some(&[118; 12][..]));
}

#[test]
fn images_of_another_size_are_resized_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    for split in ["train", "test"] {
        save(
            &dir.path().join(split).join("a/big.png"),
            RgbImage::from_pixel(8, 6, Rgb([40, 80, 120])),
        );
        save(&dir.path().join(split).join("a/fits.png"), marked(5));
    }
    let splits = load_at(dir.path(), true, rgb(3, 4), 1).expect("resized");
    // Bilinear on a uniform image keeps it uniform.
    let big = splits.train.image(0).expect("2 images");
    assert!(big[..12].iter().all(|&v| v == 40) && big[24..].iter().all(|&v| v == 120));
    assert_eq!(splits.train.image(1).map(|p| p[0]), Some(5));
    let DataReport::ImageFolder(report) = &splits.report else {
        panic!("an image folder report");
    };
    assert_eq!((report.train.resized, report.test.resized), (1, 1));

    let big = dir.path().join("train/a/big.png");
    let msg = {
        let err = load_at(dir.path(), false, rgb(3, 4), 1).expect_err("wrong size");
        err.to_string()
    };
    assert!(msg.contains(&big.display().to_string()), "{msg}");
    assert!(msg.contains("8x6") && msg.contains("4x3"), "{msg}");
}

#[test]
fn missing_root_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("nowhere");
    let msg = error_naming(&root, &root);
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn missing_train_or_test_folder_is_an_error() {
    let dir = folder(&["a", "b", "c"]);
    fs::remove_dir_all(dir.path().join("test")).expect("rm");
    let msg = error_naming(dir.path(), &dir.path().join("test"));
    assert!(msg.contains("missing"), "{msg}");
    fs::rename(dir.path().join("train"), dir.path().join("test")).expect("mv");
    error_naming(dir.path(), &dir.path().join("train"));
}

#[test]
fn split_without_class_folders_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("train")).expect("mkdir");
    fs::create_dir_all(dir.path().join("test")).expect("mkdir");
    let msg = error_naming(dir.path(), &dir.path().join("train"));
    assert!(msg.contains("no class folders"), "{msg}");
}

#[test]
fn image_directly_in_a_split_folder_is_an_error() {
    let dir = folder(&["a", "b", "c"]);
    let stray = dir.path().join("train/stray.png");
    save(&stray, marked(0));
    let msg = error_naming(dir.path(), &stray);
    assert!(msg.contains("class folders are expected"), "{msg}");
}

#[test]
fn empty_class_folder_is_an_error() {
    let dir = folder(&["a", "b", "c"]);
    let empty = dir.path().join("test/b");
    fs::remove_dir_all(&empty).expect("rm");
    fs::create_dir_all(&empty).expect("mkdir");
    fs::write(empty.join(".hidden"), b"").expect("write");
    let msg = error_naming(dir.path(), &empty);
    assert!(msg.contains("empty class folder"), "{msg}");
}

#[test]
fn non_image_file_is_an_error() {
    let dir = folder(&["a", "b", "c"]);
    let notes = dir.path().join("train/c/notes.txt");
    fs::write(&notes, b"not an image").expect("write");
    let msg = error_naming(dir.path(), &notes);
    assert!(msg.contains("not an image"), "{msg}");
}

#[test]
fn folder_inside_a_class_folder_is_an_error() {
    let dir = folder(&["a", "b", "c"]);
    let nested = dir.path().join("train/a/more");
    save(&nested.join("x.png"), marked(0));
    let msg = error_naming(dir.path(), &nested);
    assert!(msg.contains("inside a class folder"), "{msg}");
}

#[test]
fn truncated_png_is_an_error_with_the_decoders_message() {
    let dir = folder(&["a", "b", "c"]);
    let broken = dir.path().join("test/c/img2.png");
    let bytes = fs::read(&broken).expect("read");
    fs::write(&broken, &bytes[..bytes.len() / 2]).expect("write");
    let msg = error_naming(dir.path(), &broken);
    let (_, decoder) = msg
        .split_once("cannot decode the image: ")
        .unwrap_or_else(|| panic!("not a decode error: {msg}"));
    assert!(!decoder.trim().is_empty(), "{msg}");
}

#[test]
fn corrupt_png_data_is_an_error() {
    let dir = folder(&["a", "b", "c"]);
    let broken = dir.path().join("train/a/img1.png");
    let mut bytes = fs::read(&broken).expect("read");
    let len = bytes.len();
    for b in &mut bytes[40..len - 12] {
        *b ^= 0x5a;
    }
    fs::write(&broken, &bytes).expect("write");
    let msg = error_naming(dir.path(), &broken);
    assert!(msg.contains("cannot decode the image"), "{msg}");
}

#[test]
fn wrong_class_count_lists_the_folders_found() {
    let dir = folder(&["x", "y"]);
    let msg = error_naming(dir.path(), &dir.path().join("train"));
    assert!(
        msg.contains("2 class folders (x, y)") && msg.contains("3 classes"),
        "{msg}"
    );
}

#[test]
fn test_classes_must_be_the_train_classes() {
    let dir = folder(&["a", "b", "c"]);
    fs::rename(dir.path().join("test/b"), dir.path().join("test/bb")).expect("mv");
    let msg = error_naming(dir.path(), &dir.path().join("test"));
    assert!(
        msg.contains("missing b") && msg.contains("extra bb"),
        "{msg}"
    );
}

#[test]
fn unsupported_channel_counts_and_class_counts_are_errors() {
    let dir = folder(&["a", "b", "c"]);
    let two = ImageShape {
        channels: 2,
        height: 3,
        width: 4,
    };
    let err = load_at(dir.path(), false, two, 3).expect_err("2 channels");
    assert!(matches!(err, DataError::InvalidShape { .. }), "{err}");
    let err = read_image(&dir.path().join("train/a/img1.png"), two, false).expect_err("2 channels");
    assert!(err.to_string().contains("1 (grey) or 3 (RGB)"), "{err}");
    let err = load_at(dir.path(), false, rgb(3, 4), 300).expect_err("300 classes");
    assert!(matches!(err, DataError::TooManyClasses { .. }), "{err}");
}

/// Writes a PNG with the `png` crate, which can write what `image` never would.
fn write_png(path: &Path, width: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) {
    write_png_with(path, width, color, depth, data, |_| {});
}

fn write_png_with(
    path: &Path,
    width: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    extra: impl FnOnce(&mut png::Encoder<'_, fs::File>),
) {
    let file = fs::File::create(path).expect("create");
    let mut encoder = png::Encoder::new(file, width, 1);
    encoder.set_color(color);
    encoder.set_depth(depth);
    extra(&mut encoder);
    let mut writer = encoder.write_header().expect("header");
    writer.write_image_data(data).expect("data");
}

#[test]
fn sixteen_bit_png_decodes_to_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deep.png");
    // Two RGB pixels of 16-bit big-endian samples: white, then (0, 0x8080, 0).
    let data = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x80, 0x80, 0, 0];
    write_png(&path, 2, png::ColorType::Rgb, png::BitDepth::Sixteen, &data);
    let bytes = read_image(&path, rgb(1, 2), false).expect("16-bit decodes");
    // Channel after channel: R of both pixels, G, B.
    assert_eq!(bytes, [255, 0, 255, 128, 255, 0]);
}

#[test]
fn palette_png_decodes_to_its_colours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("indexed.png");
    write_png_with(
        &path,
        3,
        png::ColorType::Indexed,
        png::BitDepth::Eight,
        &[1, 0, 1],
        |e| e.set_palette(vec![10, 20, 30, 200, 100, 50]),
    );
    let bytes = read_image(&path, rgb(1, 3), false).expect("palette decodes");
    assert_eq!(bytes, [200, 10, 200, 100, 20, 100, 50, 30, 50]);
}

#[test]
fn jpeg_and_misnamed_files_decode_by_their_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jpeg = dir.path().join("photo.jpg");
    save(&jpeg, RgbImage::from_pixel(8, 8, Rgb([30, 140, 220])));
    let bytes = read_image(&jpeg, rgb(8, 8), false).expect("jpeg decodes");
    for (c, want) in [30i16, 140, 220].into_iter().enumerate() {
        let plane = &bytes[c * 64..(c + 1) * 64];
        assert!(
            plane.iter().all(|&v| (i16::from(v) - want).abs() <= 4),
            "{plane:?}"
        );
    }
    let png_named_jpeg = dir.path().join("really-a-png.jpeg");
    fs::copy(dir.path().join("photo.jpg"), dir.path().join("copy.jpg")).expect("copy");
    GrayImage::from_pixel(2, 2, image::Luma([77]))
        .save_with_format(&png_named_jpeg, image::ImageFormat::Png)
        .expect("write");
    assert_eq!(
        read_image(&png_named_jpeg, grey(2, 2), false).expect("decoded by content"),
        [77; 4]
    );
}

#[test]
fn data_source_resolves_relative_roots_in_the_data_dir_and_keeps_absolute_ones() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let built = folder(&["a", "b", "c"]);
    let root = data_dir.path().join("mine");
    fs::rename(built.path(), &root).expect("mv");
    let source = DataSource {
        data_dir: data_dir.path().to_path_buf(),
        system_dirs: false,
        download: false,
    };
    let relative = source
        .load(dataset("mine", false), rgb(3, 4), 3)
        .expect("relative root");
    let absolute = DataSource {
        data_dir: PathBuf::from("/nonexistent"),
        ..source.clone()
    }
    .load(dataset(&root.display().to_string(), false), rgb(3, 4), 3)
    .expect("absolute root");
    assert_eq!(relative.train, absolute.train);
    assert_eq!(relative.classes, ["a", "b", "c"]);
    let err = source
        .load(dataset("elsewhere", false), rgb(3, 4), 3)
        .expect_err("no such folder");
    assert!(
        err.to_string()
            .contains(&data_dir.path().join("elsewhere").display().to_string()),
        "{err}"
    );
}

#[test]
fn mnist_refuses_a_model_of_another_shape_before_looking_for_files() {
    let source = DataSource {
        data_dir: PathBuf::from("/nonexistent"),
        system_dirs: false,
        download: false,
    };
    let err = source
        .load(Dataset::Mnist, rgb(28, 28), 10)
        .expect_err("MNIST is grey");
    assert!(matches!(err, DataError::ModelMismatch { .. }), "{err}");
    let err = source
        .load(Dataset::FashionMnist, ImageShape::MNIST, 7)
        .expect_err("10 classes");
    assert!(err.to_string().contains("7 classes"), "{err}");
}
