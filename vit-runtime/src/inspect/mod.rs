//! Seeing inside a trained ViT: where its class token looks.
//!
//! - [`rollout`]: attention rollout and raw maps on plain slices (testable without a model);
//! - [`view`]: the columns of an attention grid as the command line names them;
//! - [`resample`]: patch-grid maps to image-sized, `[0, 1]` maps for display;
//! - [`export`]: the numbers behind a grid, as safetensors.
//!
//! The drawing is in [`crate::viz::attention`], the `attention` command in the binary.

pub mod export;
pub mod resample;
pub mod rollout;
pub mod view;

use crate::model::AttentionRecord;
pub use rollout::{Dims, Fusion, Head, RolloutError};
pub use view::{BlockSpan, RawSpec, View};

/// The per-image sizes of a record.
pub fn dims(record: &AttentionRecord) -> Dims {
    Dims {
        blocks: record.blocks,
        heads: record.heads,
        tokens: record.tokens,
    }
}

/// The class-token maps of every image under every view: `(batch, views, grid_rows *
/// grid_cols)`, row-major, raw values (not scaled for display).
pub fn class_maps(record: &AttentionRecord, views: &[View]) -> Result<Vec<f32>, RolloutError> {
    let dims = dims(record);
    if record.data.len() != record.batch * dims.image_len() {
        return Err(RolloutError::Length {
            found: record.data.len(),
            dims,
        });
    }
    let mut out = Vec::with_capacity(record.batch * views.len() * record.grid.0 * record.grid.1);
    for maps in record.data.chunks_exact(dims.image_len().max(1)) {
        for view in views {
            let matrix = view.matrix(maps, dims)?;
            out.extend(rollout::class_row(
                &matrix,
                dims.tokens,
                record.prefix_tokens,
                record.grid,
            )?);
        }
    }
    Ok(out)
}
