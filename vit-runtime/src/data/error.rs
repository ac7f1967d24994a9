//! Everything that can go wrong between a file on disk and a tensor on a device.
//!
//! Every variant about a file names that file: a user looking at "truncated" needs to know
//! which of eight files to delete and fetch again.

use std::path::PathBuf;

use super::shape::ImageShape;

/// Errors of the data module.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: cannot read", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: corrupt gzip data", path.display())]
    Gzip {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{}: wrong magic number 0x{found:08x}: not an IDX {kind} file (expected 0x{expected:08x})",
        path.display()
    )]
    Magic {
        path: PathBuf,
        kind: &'static str,
        found: u32,
        expected: u32,
    },

    #[error(
        "{}: wrong data type byte 0x{found:02x} in the IDX header (expected 0x08, unsigned byte)",
        path.display()
    )]
    Dtype { path: PathBuf, found: u8 },

    #[error(
        "{}: wrong rank {found} in the IDX header: an IDX {kind} file has rank {expected}",
        path.display()
    )]
    Rank {
        path: PathBuf,
        kind: &'static str,
        found: u8,
        expected: u8,
    },

    #[error(
        "{}: truncated: the header ({dims}) promises {expected} bytes but the file holds only {found}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        dims: String,
        expected: u128,
        found: u64,
    },

    #[error(
        "{}: {found} bytes but the header ({dims}) accounts for only {expected}: extra data at the end",
        path.display()
    )]
    TrailingData {
        path: PathBuf,
        dims: String,
        expected: u64,
        found: u64,
    },

    #[error(
        "{}: impossible size: the header ({dims}) promises {expected} bytes, \
         more than {compressed} bytes of gzip can hold (at most {max})",
        path.display()
    )]
    ImpossibleSize {
        path: PathBuf,
        dims: String,
        expected: u128,
        compressed: u64,
        max: u64,
    },

    #[error(
        "{}: label {label} of example {index} is out of range (classes are 0..{classes})",
        path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },

    #[error(
        "image/label count mismatch: {} holds {n_images} images but {} holds {n_labels} labels",
        images.display(),
        labels.display()
    )]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },

    #[error(
        "{}: checksum mismatch: SHA-256 of its IDX content is {found}, the official {name} is {expected}; \
         the file is damaged or not the official release: delete it and fetch it again",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        name: &'static str,
        found: String,
        expected: String,
    },

    /// The files are nowhere to be found; `help` says how to get them.
    #[error("{help}")]
    NotFound { dataset: &'static str, help: String },

    #[error("label {label} of example {index} is out of range (classes are 0..{classes})")]
    LabelRange {
        index: usize,
        label: u8,
        classes: usize,
    },

    #[error("{n_bytes} pixel bytes are not {n_labels} images of {shape} (C x H x W) bytes each")]
    PixelCount {
        n_bytes: usize,
        n_labels: usize,
        shape: ImageShape,
    },

    #[error("{classes} classes do not fit the byte labels of a split (at most 256)")]
    TooManyClasses { classes: usize },

    #[error("invalid image shape {shape} (C x H x W): {reason}")]
    InvalidShape {
        shape: ImageShape,
        reason: &'static str,
    },

    /// The model does not take what the data set holds (the build checks this for MNIST
    /// and Fashion-MNIST; kept as a safety net for hand-written callers).
    #[error(
        "{dataset} holds {holds} images in {holds_classes} classes, but the model takes {shape} \
         (C x H x W) images in {classes} classes"
    )]
    ModelMismatch {
        dataset: &'static str,
        holds: ImageShape,
        holds_classes: usize,
        shape: ImageShape,
        classes: usize,
    },

    #[error(
        "{}: image folder not found (a relative `image_folder` root is taken from the data dir: \
         --data-dir, else $VIT_DATA_DIR, else `data`)",
        path.display()
    )]
    FolderNotFound { path: PathBuf },

    #[error(
        "{}: missing: an image folder holds `train/` and `test/`, each with one folder per class \
         (`{split}/<class>/<image>.png`)",
        path.display()
    )]
    SplitFolderMissing { path: PathBuf, split: &'static str },

    #[error(
        "{}: no class folders: put the images of each class in a folder of its own \
         (`{}/<class>/<image>.png`)",
        path.display(),
        path.display()
    )]
    NoClassFolders { path: PathBuf },

    #[error(
        "{}: a file where class folders are expected: {} holds one folder per class",
        path.display(),
        dir.display()
    )]
    StrayFile { path: PathBuf, dir: PathBuf },

    #[error(
        "{}: a folder inside a class folder: a class folder holds its images directly",
        path.display()
    )]
    NestedFolder { path: PathBuf },

    #[error("{}: empty class folder: no .png, .jpg or .jpeg images in it", path.display())]
    EmptyClassFolder { path: PathBuf },

    #[error(
        "{}: not an image: class folders hold only .png, .jpg and .jpeg files \
         (hidden files, whose name starts with `.`, are skipped)",
        path.display()
    )]
    NotAnImage { path: PathBuf },

    #[error(
        "{}: {} class folders ({}), but the model has {expected} classes",
        path.display(),
        found.len(),
        found.join(", ")
    )]
    ClassCount {
        path: PathBuf,
        expected: usize,
        found: Vec<String>,
    },

    #[error(
        "{} does not have the class folders of {}: {}",
        test.display(),
        train.display(),
        class_difference(missing, extra)
    )]
    ClassMismatch {
        train: PathBuf,
        test: PathBuf,
        /// In `train/`, not in `test/`.
        missing: Vec<String>,
        /// In `test/`, not in `train/`.
        extra: Vec<String>,
    },

    /// The decoder's message is part of the text: it is what tells a truncated file from
    /// an unsupported one.
    #[error("{}: cannot decode the image: {error}", path.display())]
    Decode {
        path: PathBuf,
        error: image::ImageError,
    },

    #[error(
        "{}: image is {}x{} (WxH), the model takes {}x{}: resize the images, or set \
         `resize: true` next to `image_folder` in the spec",
        path.display(),
        found.0,
        found.1,
        expected.0,
        expected.1
    )]
    ImageSize {
        path: PathBuf,
        found: (u32, u32),
        expected: (u32, u32),
    },

    #[error("{}: {bytes} bytes of decoded images do not fit in memory", path.display())]
    OutOfMemory { path: PathBuf, bytes: usize },

    #[error("invalid loader configuration: {0}")]
    Config(String),

    #[error(
        "batch shape mismatch: the batch holds {found:?} (C, H, W) images, the tensor asks for {expected:?}"
    )]
    Shape {
        found: (usize, usize, usize),
        expected: (usize, usize, usize),
    },

    #[error("label {label} does not fit a one-hot vector of {classes} classes")]
    OneHot { label: u8, classes: usize },

    #[error("device error while building a batch tensor: {0}")]
    Device(String),

    #[error("the background batch loader stopped before the end of the epoch")]
    LoaderStopped,
}

/// `missing: a, b; extra: c` (either part left out when empty).
fn class_difference(missing: &[String], extra: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("extra {}", extra.join(", ")));
    }
    parts.join("; ")
}
