//! MNIST / Fashion-MNIST: official files, verified, decoded and batched.
//!
//! The path from disk to tensor, one module per step:
//! - [`files`]: the official file names, SHA-256s, mirrors and system folders;
//! - [`source`]: finding the files (data dir, system folders, download), verifying them;
//! - [`idx`]: decoding IDX files, raw or gzip, without trusting their headers;
//! - [`split`]: images (as bytes) paired with labels;
//! - [`loader`], [`augment`], [`batch`]: deterministic, augmented batches prepared on a
//!   background thread, turned into dfdx tensors on the caller's device;
//! - [`bench`](mod@bench): timings of all this, for `cargo bench` and the CLI.
//!
//! The CLI's use:
//! ```no_run
//! # use std::sync::Arc;
//! # use vit_runtime::data::{self, Loader, LoaderConfig};
//! # use vit_runtime::recipe::Dataset;
//! # fn run(recipe: &vit_runtime::recipe::Recipe) -> Result<(), data::DataError> {
//! let splits = data::load(Dataset::Mnist, None)?.limit(Some(1000), None);
//! println!("{}", splits.report); // the `data` subcommand
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
pub mod loader;
pub mod source;
pub mod split;

pub use batch::{Batch, ImageTensor, OneHotTensor};
pub use error::DataError;
pub use loader::{Epoch, Loader, LoaderConfig};
pub use source::{DataReport, DataSource, FileReport, Origin, Splits, DATA_DIR_ENV};
pub use split::{Split, NUM_CLASSES};

use crate::recipe::Dataset;

/// Train and test splits of `dataset`, verified against the official checksums.
///
/// `data_dir` is the CLI's `--data-dir`; without it `$VIT_DATA_DIR`, else `data`. Files are
/// looked up in `<data_dir>/<dataset>/`, then in system folders, then downloaded into
/// the data dir; see [`DataSource`] to change that.
pub fn load(dataset: Dataset, data_dir: Option<&Path>) -> Result<Splits, DataError> {
    DataSource::new(data_dir).load(dataset)
}
