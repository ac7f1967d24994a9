//! Data sets: MNIST / Fashion-MNIST from their official files, verified, or your own
//! images in torchvision's `ImageFolder` layout; decoded once, then batched.
//!
//! The path from disk to tensor, one module per step:
//! - [`files`]: the official file names, SHA-256s, mirrors and system folders;
//! - [`source`]: finding the files (data dir, system folders, download), verifying them;
//! - [`idx`]: decoding IDX files, raw or gzip, without trusting their headers;
//! - [`image_folder`]: `<root>/{train,test}/<class>/*.png|jpg`, checked against the
//!   model and decoded in parallel; [`read_image`] decodes one file the same way;
//! - [`split`]: images (as `C x H x W` bytes) paired with labels; [`ImageShape`] is what
//!   the model takes, which every load is checked against;
//! - [`report`]: what a load found, for the `data` subcommand;
//! - [`loader`], [`augment`], [`batch`]: deterministic, augmented batches prepared on a
//!   background thread, turned into dfdx tensors on the caller's device;
//! - [`bench`](mod@bench): timings of all this, for `cargo bench` and the CLI.
//!
//! The CLI's use, for a model taking `C x H x W` images in `K` classes:
//! ```no_run
//! # use std::sync::Arc;
//! # use vit_runtime::data::{self, ImageShape, Loader, LoaderConfig};
//! # fn run(recipe: &vit_runtime::recipe::Recipe) -> Result<(), data::DataError> {
//! let shape = ImageShape { channels: 1, height: 28, width: 28 };
//! let splits = data::load(recipe.dataset, None, shape, 10)?.limit(Some(1000), None);
//! println!("{}", splits.report); // the `data` subcommand
//! println!("classes: {}", splits.classes.join(", "));
//! let train = Loader::new(Arc::new(splits.train), LoaderConfig::train(recipe))?;
//! let dev = dfdx::tensor::Cpu::default();
//! for batch in train.epoch(0) {
//!     let batch = batch?;
//!     let x = batch.images::<_, 1, 28, 28>(&dev)?;
//!     let y = batch.one_hot::<_, 10>(&dev)?;
//!     # let _ = (x, y);
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

pub mod augment;
pub mod batch;
pub mod bench;
mod error;
mod fetch;
pub mod files;
pub mod idx;
pub mod image_folder;
pub mod loader;
pub mod report;
mod shape;
pub mod source;
pub mod split;

pub use batch::{Batch, ImageTensor, OneHotTensor};
pub use error::DataError;
pub use image_folder::read_image;
pub use loader::{Epoch, Loader, LoaderConfig};
pub use report::{DataReport, FileReport, FolderReport, FolderSplitReport, Origin};
pub use shape::ImageShape;
pub use source::{DataSource, DATA_DIR_ENV};
pub use split::{Split, Splits, MAX_CLASSES, NUM_CLASSES};

use crate::recipe::Dataset;

/// Train and test splits of `dataset`, as a model of input `shape` with `classes` classes
/// takes them (anything else is an error).
///
/// `data_dir` is the CLI's `--data-dir`; without it `$VIT_DATA_DIR`, else `data`. MNIST
/// and Fashion-MNIST files are looked up in `<data_dir>/<dataset>/`, then in system
/// folders, then downloaded into the data dir, and verified against the official
/// checksums; a relative image-folder root is taken from the data dir, an absolute one as
/// it is. See [`DataSource`] to change the lookup.
pub fn load(
    dataset: Dataset,
    data_dir: Option<&Path>,
    shape: ImageShape,
    classes: usize,
) -> Result<Splits, DataError> {
    DataSource::new(data_dir).load(dataset, shape, classes)
}
