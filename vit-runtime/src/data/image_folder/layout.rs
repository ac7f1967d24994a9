//! Walking an image folder: the split folders, the class folders, the image files, each
//! checked against the layout and the model's class count before anything is decoded.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::data::error::DataError;

/// File name extensions of images, compared case-insensitively.
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The files of both splits, and the class names they are labelled with.
#[derive(Debug)]
pub(super) struct Layout {
    /// Sorted folder names of `train/`: label `i` is `classes[i]`.
    pub classes: Vec<String>,
    pub train: SplitFiles,
    pub test: SplitFiles,
}

/// The image files of one split, class after class, each class in file name order.
#[derive(Debug)]
pub(super) struct SplitFiles {
    pub dir: PathBuf,
    pub paths: Vec<PathBuf>,
    /// The class index of each file.
    pub labels: Vec<u8>,
    /// Files of each class.
    pub per_class: Vec<usize>,
}

/// Checks the layout of `root` and lists its images; `classes` is what the model has.
pub(super) fn scan(root: &Path, classes: usize) -> Result<Layout, DataError> {
    if !root.is_dir() {
        return Err(DataError::FolderNotFound {
            path: root.to_path_buf(),
        });
    }
    let train_dir = split_dir(root, "train")?;
    let test_dir = split_dir(root, "test")?;
    let train = class_folders(&train_dir)?;
    if train.is_empty() {
        return Err(DataError::NoClassFolders { path: train_dir });
    }
    let names: Vec<String> = train.iter().map(|(name, _)| lossy(name)).collect();
    if names.len() != classes {
        return Err(DataError::ClassCount {
            path: train_dir,
            expected: classes,
            found: names,
        });
    }
    let test = class_folders(&test_dir)?;
    let missing = difference(&train, &test);
    let extra = difference(&test, &train);
    if !missing.is_empty() || !extra.is_empty() {
        return Err(DataError::ClassMismatch {
            train: train_dir,
            test: test_dir,
            missing,
            extra,
        });
    }
    Ok(Layout {
        classes: names,
        train: split_files(train_dir, &train)?,
        test: split_files(test_dir, &test)?,
    })
}

/// `<root>/<name>`, which must be a folder.
fn split_dir(root: &Path, name: &'static str) -> Result<PathBuf, DataError> {
    let dir = root.join(name);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(DataError::SplitFolderMissing {
            path: dir,
            split: name,
        })
    }
}

/// One visible entry of a folder.
struct Entry {
    name: OsString,
    path: PathBuf,
    is_dir: bool,
}

/// The entries of `dir` that are not hidden, sorted by name (byte order). Symbolic links
/// are followed, as torchvision follows them.
fn visible_entries(dir: &Path) -> Result<Vec<Entry>, DataError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let is_dir = fs::metadata(&path).map_err(io_err(&path))?.is_dir();
        entries.push(Entry { name, path, is_dir });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The class folders of a split folder, sorted by name; a file there is an error.
fn class_folders(split_dir: &Path) -> Result<Vec<(OsString, PathBuf)>, DataError> {
    visible_entries(split_dir)?
        .into_iter()
        .map(|e| {
            if e.is_dir {
                Ok((e.name, e.path))
            } else {
                Err(DataError::StrayFile {
                    path: e.path,
                    dir: split_dir.to_path_buf(),
                })
            }
        })
        .collect()
}

/// The image files of a class folder, sorted by name: at least one, nothing else.
fn class_images(class_dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut images = Vec::new();
    for e in visible_entries(class_dir)? {
        if e.is_dir {
            return Err(DataError::NestedFolder { path: e.path });
        }
        if !has_image_extension(&e.path) {
            return Err(DataError::NotAnImage { path: e.path });
        }
        images.push(e.path);
    }
    if images.is_empty() {
        return Err(DataError::EmptyClassFolder {
            path: class_dir.to_path_buf(),
        });
    }
    Ok(images)
}

fn split_files(dir: PathBuf, classes: &[(OsString, PathBuf)]) -> Result<SplitFiles, DataError> {
    let mut files = SplitFiles {
        dir,
        paths: Vec::new(),
        labels: Vec::new(),
        per_class: Vec::with_capacity(classes.len()),
    };
    for (label, (_, class_dir)) in classes.iter().enumerate() {
        // `scan` checked the class count against the model's, which `load` bounds by 256.
        let label = u8::try_from(label).map_err(|_| DataError::TooManyClasses {
            classes: classes.len(),
        })?;
        let images = class_images(class_dir)?;
        files.per_class.push(images.len());
        files
            .labels
            .extend(std::iter::repeat_n(label, images.len()));
        files.paths.extend(images);
    }
    Ok(files)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Names of `a` that `b` lacks, for messages.
fn difference(a: &[(OsString, PathBuf)], b: &[(OsString, PathBuf)]) -> Vec<String> {
    a.iter()
        .filter(|(name, _)| !b.iter().any(|(other, _)| other == name))
        .map(|(name, _)| lossy(name))
        .collect()
}

fn lossy(name: &OsString) -> String {
    name.to_string_lossy().into_owned()
}
