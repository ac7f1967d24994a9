//! Checkpoints: one safetensors file with the weights (timm names), the optimiser's
//! moments (`optimizer.m.<name>`, `optimizer.v.<name>`) and the run state in its
//! metadata. Written to a temporary file and renamed, so a crash leaves either the
//! previous checkpoint or the new one, never half of one.
use super::optim::{Moments, Optimizer};
use ::safetensors::tensor::{Dtype as SafeDtype, SafeTensors, TensorView};
use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
    ViewTensorRef,
};
use dfdx::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write checkpoint {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a safetensors file: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error(
        "{path} does not fit model `{model}`: tensor `{tensor}` {problem} (the checkpoint was saved from spec `{saved}`)"
    )]
    Mismatch {
        path: PathBuf,
        model: String,
        saved: String,
        tensor: String,
        problem: String,
    },
}

/// The run state stored with the weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Spec name the weights belong to.
    pub spec: String,
    /// Epochs completed (1-based count); training resumes with the next one.
    pub epoch: usize,
    /// Optimiser steps done.
    pub step: u64,
    pub seed: u64,
}

const STATE_KEY: &str = "vit_rs.state";
const SPEC_KEY: &str = "vit_rs.spec_yaml";

/// Writes weights, optimiser state and run state to `path` atomically.
pub fn save<M, D>(
    path: &Path,
    model: &M,
    optimizer: Option<&Optimizer>,
    state: &State,
    spec_yaml: &str,
) -> Result<(), CheckpointError>
where
    M: TensorCollection<f32, D>,
    D: Device<f32>,
{
    let mut collect = Collect(Vec::new());
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut collect,
    });
    if let Err(never) = walked {
        match never {}
    }
    let mut tensors = collect.0;
    for Moments { name, m, v } in optimizer.map(|o| o.moments.as_slice()).unwrap_or_default() {
        tensors.push((format!("optimizer.m.{name}"), vec![m.len()], m.clone()));
        tensors.push((format!("optimizer.v.{name}"), vec![v.len()], v.clone()));
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, data)| {
            (
                name,
                shape,
                data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(SafeDtype::F32, shape.clone(), data)
                .expect("shape matches data length");
            (name.clone(), view)
        })
        .collect();
    let metadata = HashMap::from([
        (
            STATE_KEY.to_string(),
            serde_json::to_string(state).expect("state serialises"),
        ),
        (SPEC_KEY.to_string(), spec_yaml.to_string()),
    ]);
    let serialized = ::safetensors::tensor::serialize(views, &Some(metadata)).map_err(|e| {
        CheckpointError::Format {
            path: path.into(),
            reason: e.to_string(),
        }
    })?;
    write_atomically(path, &serialized)
}

/// Writes `bytes` next to `path`, syncs, then renames over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let err = |source| CheckpointError::Write {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Loads weights (and, if given, the optimiser state) from `path` into `model`.
///
/// Every tensor of the model must be in the file with the same shape; the first that is
/// not is named in the error, and the model is left unchanged in that case.
pub fn load<M, D>(
    path: &Path,
    model: &mut M,
    model_name: &str,
    optimizer: Option<&mut Optimizer>,
) -> Result<State, CheckpointError>
where
    M: TensorCollection<f32, D> + Clone,
    D: Device<f32>,
{
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.into(),
        source,
    })?;
    let format = |reason: String| CheckpointError::Format {
        path: path.into(),
        reason,
    };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let state: State = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| format(format!("no `{STATE_KEY}` metadata: not written by vit-rs")))?;

    let mut staged = model.clone();
    let mut fill = Fill {
        file: &file,
        first_error: None,
        names: Vec::new(),
    };
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (&mut staged, String::new()),
        f: &mut fill,
    });
    if let Err(never) = walked {
        match never {}
    }
    if let Some((tensor, problem)) = fill.first_error {
        return Err(CheckpointError::Mismatch {
            path: path.into(),
            model: model_name.into(),
            saved: state.spec.clone(),
            tensor,
            problem,
        });
    }
    *model = staged;
    if let Some(optimizer) = optimizer {
        optimizer.step = state.step;
        optimizer.moments = fill
            .names
            .iter()
            .filter_map(|name| {
                let m = read_f32(&file, &format!("optimizer.m.{name}"))?;
                let v = read_f32(&file, &format!("optimizer.v.{name}"))?;
                Some(Moments {
                    name: name.clone(),
                    m,
                    v,
                })
            })
            .collect();
        if optimizer.moments.len() != fill.names.len() {
            optimizer.moments.clear();
        }
    }
    Ok(state)
}

/// The spec YAML stored in a checkpoint, if any.
pub fn spec_yaml(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).ok()?;
    metadata.metadata().as_ref()?.get(SPEC_KEY).cloned()
}

fn read_f32(file: &SafeTensors, name: &str) -> Option<Vec<f32>> {
    let view = file.tensor(name).ok()?;
    (view.dtype() == SafeDtype::F32).then(|| {
        view.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

/// Collects `(name, shape, values)` of every tensor.
struct Collect(Vec<(String, Vec<usize>, Vec<f32>)>);

impl<D: Device<f32>> TensorVisitor<f32, D> for Collect {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, D>,
        (t, name): (&Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, Self::Err> {
        self.0
            .push((name, t.shape().concrete().into_iter().collect(), t.as_vec()));
        Ok(None)
    }
}

/// Copies every tensor from the file, recording the first missing or misshapen one.
struct Fill<'a> {
    file: &'a SafeTensors<'a>,
    first_error: Option<(String, String)>,
    /// Names of trainable tensors, in visiting order (the optimiser's order).
    names: Vec<String>,
}

impl<D: Device<f32>> TensorVisitor<f32, D> for Fill<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, D>,
        (t, name): (&mut Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, Self::Err> {
        if opts.do_gradient_update {
            self.names.push(name.clone());
        }
        if self.first_error.is_some() {
            return Ok(None);
        }
        let expected: Vec<usize> = t.shape().concrete().into_iter().collect();
        let problem = match self.file.tensor(&name) {
            Err(_) => Some("is missing from the file".to_string()),
            Ok(view) if view.dtype() != SafeDtype::F32 => {
                Some(format!("has dtype {:?}, expected F32", view.dtype()))
            }
            Ok(view) if view.shape() != &expected[..] => Some(format!(
                "has shape {:?} in the file, the model expects {:?}",
                view.shape(),
                expected
            )),
            Ok(_) => None,
        };
        match problem {
            Some(problem) => self.first_error = Some((name, problem)),
            None => {
                let values = read_f32(self.file, &name).expect("dtype checked above");
                t.copy_from(&values);
            }
        }
        Ok(None)
    }
}
