//! Helpers shared by the integration tests: a model's tensors as a checkpoint names them,
//! optionally with their gradients, so that tests compare plain `Vec`s.
//!
//! Each test target takes what it needs (`mod common;`), hence the `dead_code` allowance.
#![allow(dead_code)]

use vit_runtime::dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorName, ViewTensorRef,
};
use vit_runtime::dfdx::prelude::*;

/// `(shape, values)` of the F32 tensor `name` of a safetensors file's bytes; `None` if the
/// file has no such tensor.
pub fn file_tensor(bytes: &[u8], name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
    let file = ::safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    let view = file.tensor(name).ok()?;
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Some((view.shape().to_vec(), values))
}

/// One tensor of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The timm-style name a checkpoint gives it.
    pub name: String,
    pub trainable: bool,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    /// Its gradient, for trainable tensors read with [`params_with_gradients`]; a tensor
    /// the backward pass never reached reads as zeros.
    pub gradient: Option<Vec<f32>>,
}

struct Collect<'a> {
    grads: Option<&'a mut Gradients<f32, Cpu>>,
    found: Vec<Param>,
}

impl TensorVisitor<f32, Cpu> for Collect<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = <Cpu as HasErr>::Err;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, Cpu>,
        (t, name): (&Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        let gradient = match self.grads.as_deref_mut() {
            Some(grads) if opts.do_gradient_update => {
                grads.get_or_alloc_mut(t)?;
                Some(grads.get(t).as_vec())
            }
            _ => None,
        };
        self.found.push(Param {
            name,
            trainable: opts.do_gradient_update,
            shape: t.shape().concrete().into_iter().collect(),
            values: t.as_vec(),
            gradient,
        });
        Ok(None)
    }
}

fn collect<M: TensorCollection<f32, Cpu>>(
    model: &M,
    grads: Option<&mut Gradients<f32, Cpu>>,
) -> Vec<Param> {
    let mut visitor = Collect {
        grads,
        found: Vec::new(),
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut visitor,
    })
    .expect("reading a CPU tensor");
    visitor.found
}

/// Every tensor of `model`, in visiting (= checkpoint) order.
pub fn params<M: TensorCollection<f32, Cpu>>(model: &M) -> Vec<Param> {
    collect(model, None)
}

/// Every trainable tensor of `model` with its gradient in `grads`, in visiting order.
pub fn params_with_gradients<M: TensorCollection<f32, Cpu>>(
    model: &M,
    grads: &mut Gradients<f32, Cpu>,
) -> Vec<Param> {
    collect(model, Some(grads))
        .into_iter()
        .filter(|p| p.trainable)
        .collect()
}
