//! Checkpoints: one safetensors file with the weights (timm names), the optimiser's
//! moments (`optimizer.m.<name>`, `optimizer.v.<name>`) and the run state in its
//! metadata. Written to a temporary file and renamed, so a crash leaves either the
//! previous checkpoint or the new one, never half of one.
//!
//! [`load_weights`] reads the weights alone from any safetensors file with those names,
//! e.g. a PyTorch `state_dict` saved with `safetensors.torch.save_file` (see
//! `bench/pytorch/models.py`).
use super::optim::{Moments, Optimizer};
use ::safetensors::tensor::{Dtype as SafeDtype, SafeTensors, TensorView};
use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
    ViewTensorRef,
};
use dfdx::prelude::*;
use std::collections::{HashMap, HashSet};
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
        "{path} does not fit model `{model}`: tensor `{tensor}` {problem}{}",
        .saved.as_ref().map(|s| format!(" (the checkpoint was saved from spec `{s}`)")).unwrap_or_default()
    )]
    Mismatch {
        path: PathBuf,
        model: String,
        /// The spec a vit-rs checkpoint was saved from; `None` for plain weight files.
        saved: Option<String>,
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
    /// The data set's class names, by label (image folders: their folder names), so that
    /// `eval`, `predict` and plots name classes without the data. Empty in checkpoints
    /// written before they were recorded.
    #[serde(default)]
    pub classes: Vec<String>,
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
    let mut tensors = tensors_of(model);
    for Moments { name, m, v } in optimizer.map(|o| o.moments.as_slice()).unwrap_or_default() {
        tensors.push((format!("optimizer.m.{name}"), vec![m.len()], m.clone()));
        tensors.push((format!("optimizer.v.{name}"), vec![v.len()], v.clone()));
    }
    let metadata = HashMap::from([
        (
            STATE_KEY.to_string(),
            serde_json::to_string(state).expect("state serialises"),
        ),
        (SPEC_KEY.to_string(), spec_yaml.to_string()),
    ]);
    let serialized =
        serialize(tensors, Some(metadata)).map_err(|reason| CheckpointError::Format {
            path: path.into(),
            reason,
        })?;
    write_atomically(path, &serialized)
}

/// `(name, shape, values)` tensors as a safetensors file in memory.
fn serialize(
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, String> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, data)| {
            let data = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name, shape, data)
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
    ::safetensors::tensor::serialize(views, &metadata).map_err(|e| e.to_string())
}

/// Writes `bytes` next to `path`, syncs, then renames over `path`; on failure the
/// temporary file is removed and `path` is left as it was.
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
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        // A half-written file is of no use, and `path` still holds the last good one.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
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
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    let state = state(&bytes).ok_or_else(|| CheckpointError::Format {
        path: path.into(),
        reason: format!("no `{STATE_KEY}` metadata: not written by vit-rs"),
    })?;
    let filled = fill(path, &file, model, model_name, Some(&state.spec))?;
    if let Some(optimizer) = optimizer {
        optimizer.step = state.step;
        optimizer.moments = filled
            .trainable
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
        if optimizer.moments.len() != filled.trainable.len() {
            optimizer.moments.clear();
        }
    }
    Ok(state)
}

/// Loads the weights of `model` by name from any safetensors file: a plain weight file
/// (e.g. a PyTorch `state_dict` with the timm names of `bench/pytorch/models.py`) or a
/// vit-rs checkpoint, whose optimiser state and run state are then ignored.
///
/// Every tensor of the model (fixed sinusoidal positions included) must be in the file
/// as F32 with the model's shape; the first that is not is named in the error, and the
/// model is left unchanged in that case. Returns the names of the file's tensors that
/// the model has no use for (sorted; a checkpoint's optimiser moments are not counted),
/// so that a caller can warn about them.
pub fn load_weights<M, D>(
    path: &Path,
    model: &mut M,
    model_name: &str,
) -> Result<Vec<String>, CheckpointError>
where
    M: TensorCollection<f32, D> + Clone,
    D: Device<f32>,
{
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    let saved = state(&bytes).map(|s| s.spec);
    fill_weights(path, &file, saved.as_deref(), model, model_name)
}

/// One change [`load_weights_adapted`] made to a tensor of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptation {
    pub tensor: String,
    /// Its shape in the file.
    pub from: Vec<usize>,
    /// The model's shape.
    pub to: Vec<usize>,
    /// What was done, in words.
    pub how: String,
}

impl std::fmt::Display for Adaptation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {:?} -> {:?}, {}",
            self.tensor, self.from, self.to, self.how
        )
    }
}

/// What [`load_weights_adapted`] did besides loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Adapted {
    /// The file's tensors the model has no use for, as [`load_weights`] returns them.
    pub unused: Vec<String>,
    /// Every tensor that did not load as it is, in the model's order.
    pub adaptations: Vec<Adaptation>,
}

/// [`load_weights`] into a model of other sizes, as timm loads pretrained weights into
/// `create_model(name, pretrained=True, img_size=.., in_chans=.., num_classes=..)`:
/// - `pos_embed` of another length is resampled to the model's patch grid (the class and
///   distillation tokens' positions kept), the file's grid taken to be square;
/// - conv patch kernels (`patch_embed.proj.weight`) of another size are resampled to the
///   model's patch size, then adapted to its channel count;
/// - a head (`head`, `head_dist`) for another class count is left as the model has it
///   (freshly initialised).
///
/// `image` is the model's input `(height, width)`. Any other difference stays an error that
/// names the tensor, as in [`load_weights`]; so does one of these the file cannot be adapted
/// from.
pub fn load_weights_adapted<M, D>(
    path: &Path,
    model: &mut M,
    model_name: &str,
    image: (usize, usize),
) -> Result<Adapted, CheckpointError>
where
    M: TensorCollection<f32, D> + Clone,
    D: Device<f32>,
{
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    let saved = state(&bytes).map(|s| s.spec);
    let ours = tensors_of(&*model);
    let mismatch = |tensor: &str, problem: String| CheckpointError::Mismatch {
        path: path.into(),
        model: model_name.into(),
        saved: saved.clone(),
        tensor: tensor.into(),
        problem,
    };
    let prefix = ours
        .iter()
        .filter(|(name, ..)| name == "cls_token" || name == "dist_token")
        .count();
    let mut tensors: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    for name in file.names() {
        let view = file.tensor(name).expect("a name of the file");
        match read_f32(&file, name) {
            Some(values) => {
                tensors.insert(name.clone(), (view.shape().to_vec(), values));
            }
            None if ours.iter().any(|(n, ..)| n == name) => {
                let problem = format!("has dtype {:?}, expected F32", view.dtype());
                return Err(mismatch(name, problem));
            }
            None => {}
        }
    }
    let mut adaptations = Vec::new();
    for (name, shape, values) in &ours {
        let Some((from, theirs)) = tensors.get(name) else {
            continue;
        };
        if from == shape {
            continue;
        }
        let (from, theirs) = (from.clone(), theirs.as_slice());
        let (adapted, how) = match name.as_str() {
            "pos_embed" => adapt_positions(theirs, &from, shape, prefix, image)
                .map_err(|problem| mismatch(name, problem))?,
            "patch_embed.proj.weight" => {
                adapt_kernels(theirs, &from, shape).map_err(|problem| mismatch(name, problem))?
            }
            "head.weight" | "head.bias" | "head_dist.weight" | "head_dist.bias"
                if from.len() == shape.len() && from[1..] == shape[1..] =>
            {
                let how = format!(
                    "a fresh head: {} classes in the file, {} in the model",
                    from[0], shape[0]
                );
                (values.clone(), how)
            }
            _ => continue, // left for `fill` to report
        };
        adaptations.push(Adaptation {
            tensor: name.clone(),
            from,
            to: shape.clone(),
            how,
        });
        tensors.insert(name.clone(), (shape.clone(), adapted));
    }
    let adapted = serialize(
        tensors.into_iter().map(|(n, (s, v))| (n, s, v)).collect(),
        None,
    )
    .map_err(|reason| CheckpointError::Format {
        path: path.into(),
        reason,
    })?;
    let file = parse(path, &adapted)?;
    let unused = fill_weights(path, &file, saved.as_deref(), model, model_name)?;
    Ok(Adapted {
        unused,
        adaptations,
    })
}

/// `pos_embed` `(1, prefix + n, dim)` from the file resampled to the model's `to`.
fn adapt_positions(
    theirs: &[f32],
    from: &[usize],
    to: &[usize],
    prefix: usize,
    (height, width): (usize, usize),
) -> Result<(Vec<f32>, String), String> {
    let (&[1, n_from, dim_from], &[1, n_to, dim]) = (from, to) else {
        return Err(format!(
            "has shape {from:?} in the file, the model expects {to:?}"
        ));
    };
    if dim_from != dim {
        return Err(format!(
            "has width {dim_from} in the file, the model's is {dim}: only the number of positions can be adapted"
        ));
    }
    let square = |n: usize| (0..=n).find(|s| s * s >= n).filter(|s| s * s == n);
    let old = n_from.checked_sub(prefix).and_then(square).ok_or_else(|| {
        format!("has {n_from} positions in the file: not {prefix} token(s) and a square grid")
    })?;
    // The model's grid has the image's aspect: gh * gw = n, gh / gw = height / width.
    let n = n_to - prefix;
    let gh = (1..=n)
        .find(|gh| n.is_multiple_of(*gh) && gh * width == (n / gh) * height)
        .expect("a generated model's positions cover its patch grid");
    let new = (gh, n / gh);
    let kept = match prefix {
        0 => "",
        1 => ", the class token's kept",
        _ => ", the class and distillation tokens' kept",
    };
    let how = format!(
        "positions resampled from a {old}x{old} grid to {}x{} (bicubic, antialiased){kept}",
        new.0, new.1
    );
    let resampled = super::adapt::resample_positions(theirs, prefix, dim, (old, old), new);
    Ok((resampled, how))
}

/// Conv patch kernels `(dim, channels, p, p)` from the file resampled to the model's patch
/// size, then adapted to its channel count.
fn adapt_kernels(
    theirs: &[f32],
    from: &[usize],
    to: &[usize],
) -> Result<(Vec<f32>, String), String> {
    let (&[out_from, c_from, h_from, w_from], &[out, c, h, w]) = (from, to) else {
        return Err(format!(
            "has shape {from:?} in the file, the model expects {to:?}: only conv patch kernels can be adapted"
        ));
    };
    if out_from != out {
        return Err(format!(
            "has width {out_from} in the file, the model's is {out}: only the patch size and channels can be adapted"
        ));
    }
    let mut how = Vec::new();
    let mut kernels = theirs.to_vec();
    if (h_from, w_from) != (h, w) {
        kernels = super::adapt::resample_patch_kernels(&kernels, (h_from, w_from), (h, w));
        how.push(format!(
            "kernels resampled from {h_from}x{w_from} to {h}x{w} (pseudo-inverse of the bicubic resize)"
        ));
    }
    if c_from != c {
        kernels = super::adapt::adapt_input_channels(&kernels, out, c_from, c)?;
        how.push(match c {
            1 => format!("{c_from} input channels summed into 1"),
            _ => format!("{c_from} input channels repeated to {c} and scaled by 3/{c}"),
        });
    }
    Ok((kernels, how.join("; ")))
}

/// Fills `model` from `file` and returns the file's tensors it has no use for.
fn fill_weights<M, D>(
    path: &Path,
    file: &SafeTensors,
    saved: Option<&str>,
    model: &mut M,
    model_name: &str,
) -> Result<Vec<String>, CheckpointError>
where
    M: TensorCollection<f32, D> + Clone,
    D: Device<f32>,
{
    let filled = fill(path, file, model, model_name, saved)?;
    let moments = |name: &str| saved.is_some() && name.starts_with("optimizer.");
    // PyTorch's batch norms count their updates; with a fixed momentum (all vit-rs has)
    // the count changes nothing, so the model keeps none and it is not worth a warning.
    let batch_count = |name: &str| {
        name.strip_suffix("num_batches_tracked")
            .is_some_and(|layer| filled.all.contains(&format!("{layer}running_mean")))
    };
    let mut unused: Vec<String> = file
        .names()
        .into_iter()
        .filter(|name| !filled.all.contains(*name) && !moments(name) && !batch_count(name))
        .cloned()
        .collect();
    unused.sort();
    Ok(unused)
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|source| CheckpointError::Read {
        path: path.into(),
        source,
    })
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, CheckpointError> {
    SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Format {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// The run state of a vit-rs checkpoint; `None` for other safetensors files.
fn state(bytes: &[u8]) -> Option<State> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).ok()?;
    let text = metadata.metadata().as_ref()?.get(STATE_KEY)?.clone();
    serde_json::from_str(&text).ok()
}

/// What [`fill`] learnt of the model's tensors.
struct Filled {
    /// All their names.
    all: HashSet<String>,
    /// The trainable ones, in visiting (the optimiser's) order.
    trainable: Vec<String>,
}

/// Copies every tensor of `model` from `file`, or changes nothing and names the first
/// missing or misshapen one.
fn fill<M, D>(
    path: &Path,
    file: &SafeTensors,
    model: &mut M,
    model_name: &str,
    saved: Option<&str>,
) -> Result<Filled, CheckpointError>
where
    M: TensorCollection<f32, D> + Clone,
    D: Device<f32>,
{
    let mut staged = model.clone();
    let mut fill = Fill {
        file,
        first_error: None,
        all: Default::default(),
        trainable: Vec::new(),
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
            saved: saved.map(str::to_string),
            tensor,
            problem,
        });
    }
    *model = staged;
    Ok(Filled {
        all: fill.all,
        trainable: fill.trainable,
    })
}

/// The run state of the safetensors file at `path`; `None` for a file not written by vit-rs
/// (plain weights).
pub fn read_state(path: &Path) -> Result<Option<State>, CheckpointError> {
    let bytes = read(path)?;
    parse(path, &bytes)?;
    Ok(state(&bytes))
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

/// `(name, shape, values)` of every tensor of `model`, in visiting order.
fn tensors_of<M, D>(model: &M) -> Vec<(String, Vec<usize>, Vec<f32>)>
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
    collect.0
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
    /// Names of all tensors visited.
    all: HashSet<String>,
    /// Names of trainable tensors, in visiting order (the optimiser's order).
    trainable: Vec<String>,
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
        self.all.insert(name.clone());
        if opts.do_gradient_update {
            self.trainable.push(name.clone());
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
