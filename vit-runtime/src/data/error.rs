//! Everything that can go wrong between a file on disk and a tensor on a device.
//!
//! Every variant about a file names that file: a user looking at "truncated" needs to know
//! which of eight files to delete and fetch again.

use std::path::PathBuf;

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
