//! The numbers behind an attention grid, as a safetensors file for people who want their
//! own plots (`safetensors.numpy.load_file`, `safetensors.torch.load_file`).
//!
//! Tensors: `attention` `(batch, blocks, heads, tokens, tokens)` f32, the model's softmax
//! maps; `maps` `(batch, columns, grid_rows, grid_cols)` f32, each column's class-token
//! row over the patches before display scaling; `images` `(batch, height, width)` f32 in
//! `[0, 1]`; `indices`, `labels`, `predictions` `(batch,)` i64. Metadata: `columns` (a JSON
//! list of the column names), `prefix_tokens`, and whatever the caller adds.
use crate::model::AttentionRecord;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Everything the export holds besides the attention record.
pub struct Export<'a> {
    pub record: &'a AttentionRecord,
    /// One name per column of `maps`.
    pub columns: &'a [String],
    /// `(batch, columns, grid_rows, grid_cols)`.
    pub maps: &'a [f32],
    /// `(batch, height, width)` in `[0, 1]`.
    pub images: &'a [f32],
    pub image_size: (usize, usize),
    pub indices: &'a [usize],
    pub labels: &'a [usize],
    pub predictions: &'a [usize],
    /// Extra metadata, e.g. the model and checkpoint.
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot export to {path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// Writes `export` to `path`.
pub fn write(path: &Path, export: &Export) -> Result<(), ExportError> {
    let format = |reason: String| ExportError::Format {
        path: path.into(),
        reason,
    };
    let r = export.record;
    let b = r.batch;
    let (h, w) = export.image_size;
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let ints = |v: &[usize]| {
        v.iter()
            .flat_map(|&x| (x as i64).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        (
            "attention",
            Dtype::F32,
            vec![b, r.blocks, r.heads, r.tokens, r.tokens],
            floats(&r.data),
        ),
        (
            "maps",
            Dtype::F32,
            vec![b, export.columns.len(), r.grid.0, r.grid.1],
            floats(export.maps),
        ),
        ("images", Dtype::F32, vec![b, h, w], floats(export.images)),
        ("indices", Dtype::I64, vec![b], ints(export.indices)),
        ("labels", Dtype::I64, vec![b], ints(export.labels)),
        ("predictions", Dtype::I64, vec![b], ints(export.predictions)),
    ];
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|view| (name.to_string(), view))
                .map_err(|e| format(format!("tensor `{name}` {shape:?}: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut metadata: HashMap<String, String> = export.metadata.iter().cloned().collect();
    metadata.insert(
        "columns".into(),
        serde_json::to_string(export.columns).map_err(|e| format(e.to_string()))?,
    );
    metadata.insert("prefix_tokens".into(), r.prefix_tokens.to_string());
    let bytes = safetensors::tensor::serialize(views, &Some(metadata))
        .map_err(|e| format(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|source| ExportError::Write {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;

    #[test]
    fn export_reads_back_with_its_shapes_and_column_names() {
        let record = AttentionRecord {
            batch: 1,
            blocks: 2,
            heads: 2,
            tokens: 5,
            prefix_tokens: 1,
            grid: (2, 2),
            data: (0..100).map(|v| v as f32).collect(),
        };
        let columns = ["rollout mean".to_string(), "raw 1:0".to_string()];
        let export = Export {
            record: &record,
            columns: &columns,
            maps: &[0.5; 8],
            images: &[0.25; 16],
            image_size: (4, 4),
            indices: &[7],
            labels: &[3],
            predictions: &[4],
            metadata: vec![("model".into(), "test".into())],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attention.safetensors");
        write(&path, &export).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(file.tensor("attention").unwrap().shape(), [1, 2, 2, 5, 5]);
        assert_eq!(file.tensor("maps").unwrap().shape(), [1, 2, 2, 2]);
        assert_eq!(file.tensor("images").unwrap().shape(), [1, 4, 4]);
        assert_eq!(file.tensor("labels").unwrap().data(), 3i64.to_le_bytes());
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["columns"], r#"["rollout mean","raw 1:0"]"#);
        assert_eq!(meta["model"], "test");
    }

    #[test]
    fn maps_of_the_wrong_size_are_an_error_not_a_panic() {
        let record = AttentionRecord {
            batch: 1,
            blocks: 1,
            heads: 1,
            tokens: 5,
            prefix_tokens: 1,
            grid: (2, 2),
            data: vec![0.0; 25],
        };
        let export = Export {
            record: &record,
            columns: &["a".to_string()],
            maps: &[0.0; 3],
            images: &[0.0; 4],
            image_size: (2, 2),
            indices: &[0],
            labels: &[0],
            predictions: &[0],
            metadata: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("x.safetensors"), &export).unwrap_err();
        assert!(err.to_string().contains("`maps`"), "{err}");
    }
}
