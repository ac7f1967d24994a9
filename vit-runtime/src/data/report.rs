//! What a load found, for the `data` subcommand: the verified files of an IDX data set, or
//! the classes and image counts of an image folder.

use std::fmt;
use std::path::PathBuf;

use super::shape::ImageShape;
use crate::recipe::Dataset;

/// How many class names a report prints before it summarises the rest.
const SHOWN_CLASSES: usize = 10;

/// Where a file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    DataDir,
    System,
    Downloaded,
}

/// One verified file, for the `data` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub name: &'static str,
    pub path: PathBuf,
    pub origin: Origin,
    pub gzipped: bool,
    /// The verified SHA-256 (equal to the official one).
    pub sha256: String,
    pub count: usize,
}

/// A loaded data set; `Display` prints it for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataReport {
    /// MNIST or Fashion-MNIST: the four verified files, one line each.
    Idx {
        dataset: Dataset,
        files: Vec<FileReport>,
    },
    /// An image folder: its classes and what each split decoded to.
    ImageFolder(FolderReport),
}

impl DataReport {
    pub fn dataset(&self) -> Dataset {
        match self {
            DataReport::Idx { dataset, .. } => *dataset,
            DataReport::ImageFolder(folder) => folder.dataset,
        }
    }

    /// The verified IDX files (none for an image folder).
    pub fn files(&self) -> &[FileReport] {
        match self {
            DataReport::Idx { files, .. } => files,
            DataReport::ImageFolder(_) => &[],
        }
    }
}

/// An image folder as it was decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderReport {
    pub dataset: Dataset,
    /// The root, resolved against the data dir.
    pub root: PathBuf,
    /// What every image was decoded to.
    pub shape: ImageShape,
    /// Whether images of another size were resized (else they were errors).
    pub resize: bool,
    /// Folder names of `train/`, sorted: class `i` is `classes[i]`.
    pub classes: Vec<String>,
    pub train: FolderSplitReport,
    pub test: FolderSplitReport,
}

/// One split of an image folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSplitReport {
    /// `<root>/train` or `<root>/test`.
    pub dir: PathBuf,
    /// Images of each class, in class order.
    pub per_class: Vec<usize>,
    /// Images that had another size and were resized.
    pub resized: usize,
}

impl FolderSplitReport {
    pub fn images(&self) -> usize {
        self.per_class.iter().sum()
    }

    /// Memory the decoded images take: `images x C x H x W` bytes.
    pub fn decoded_bytes(&self, shape: ImageShape) -> usize {
        self.images().saturating_mul(shape.elements())
    }
}

impl fmt::Display for DataReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataReport::Idx { dataset, files } => write_idx(f, *dataset, files),
            DataReport::ImageFolder(folder) => write_folder(f, folder),
        }
    }
}

fn write_idx(f: &mut fmt::Formatter<'_>, dataset: Dataset, files: &[FileReport]) -> fmt::Result {
    let name = match super::files::IdxDataset::of(dataset) {
        Some(idx) => super::files::display_name(idx),
        None => dataset.name(),
    };
    writeln!(f, "{name}:")?;
    for file in files {
        let origin = match file.origin {
            Origin::DataDir => "data dir",
            Origin::System => "system",
            Origin::Downloaded => "downloaded",
        };
        writeln!(
            f,
            "  {:<24} {:>6} examples  SHA-256 OK ({}…)  {} [{origin}]",
            file.name,
            file.count,
            &file.sha256[..12.min(file.sha256.len())],
            file.path.display(),
        )?;
    }
    Ok(())
}

/// ```text
/// image folder data/flowers: 3 classes, images decoded to 3x64x64 (C x H x W), resize on
///   train   1200 images  14.7 MB decoded (1200 x 3 x 64 x 64 bytes), 12 resized  data/flowers/train
///           daisy 400, rose 400, tulip 400
/// ```
fn write_folder(f: &mut fmt::Formatter<'_>, folder: &FolderReport) -> fmt::Result {
    let shape = folder.shape;
    writeln!(
        f,
        "image folder {}: {} classes, images decoded to {shape} (C x H x W), resize {}",
        folder.root.display(),
        folder.classes.len(),
        if folder.resize { "on" } else { "off" },
    )?;
    for (name, split) in [("train", &folder.train), ("test", &folder.test)] {
        let bytes = split.decoded_bytes(shape);
        write!(
            f,
            "  {name:<6} {:>7} images  {:.1} MB decoded ({} x {} x {} x {} bytes)",
            split.images(),
            bytes as f64 / 1e6,
            split.images(),
            shape.channels,
            shape.height,
            shape.width,
        )?;
        if split.resized > 0 {
            write!(f, ", {} resized", split.resized)?;
        }
        writeln!(f, "  {}", split.dir.display())?;
        let counts: Vec<String> = folder
            .classes
            .iter()
            .zip(&split.per_class)
            .take(SHOWN_CLASSES)
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        let more = folder.classes.len().saturating_sub(SHOWN_CLASSES);
        let more = if more > 0 {
            format!(", … ({more} more classes)")
        } else {
            String::new()
        };
        writeln!(f, "         {}{more}", counts.join(", "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::ImageFolder;

    #[test]
    fn folder_report_shows_classes_counts_and_decoded_memory() {
        let dataset = Dataset::ImageFolder(ImageFolder {
            root: "flowers",
            resize: true,
        });
        let split = |dir: &str, per_class: Vec<usize>, resized| FolderSplitReport {
            dir: PathBuf::from(dir),
            per_class,
            resized,
        };
        let report = DataReport::ImageFolder(FolderReport {
            dataset,
            root: PathBuf::from("data/flowers"),
            shape: ImageShape {
                channels: 3,
                height: 64,
                width: 64,
            },
            resize: true,
            classes: vec!["daisy".into(), "rose".into(), "tulip".into()],
            train: split("data/flowers/train", vec![400, 400, 400], 12),
            test: split("data/flowers/test", vec![100, 100, 100], 0),
        });
        let text = report.to_string();
        for needle in [
            "image folder data/flowers: 3 classes",
            "3x64x64",
            "1200 images  14.7 MB decoded (1200 x 3 x 64 x 64 bytes), 12 resized",
            "daisy 400, rose 400, tulip 400",
            "daisy 100, rose 100, tulip 100",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        assert!(report.files().is_empty());
        assert_eq!(report.dataset(), dataset);
    }
}
