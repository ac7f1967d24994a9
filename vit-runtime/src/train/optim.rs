//! Adam, AdamW and SGD with state that can be checkpointed.
//!
//! dfdx's optimisers keep their moments private, so a resumed run could not continue
//! where it stopped; this one keeps them as named host vectors that go into the
//! checkpoint next to the weights.
use crate::nn::kernels::read;
use crate::recipe::{self, OptimizerKind};
use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::prelude::*;
use rayon::prelude::*;

/// First and second moments of one parameter tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    pub name: String,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer {
    pub spec: recipe::Optimizer,
    /// Updates done so far (Adam's bias correction uses it).
    pub step: u64,
    /// Per trainable tensor, in visiting order; empty until the first update.
    pub moments: Vec<Moments>,
}

impl Optimizer {
    pub fn new(spec: recipe::Optimizer) -> Self {
        Optimizer {
            spec,
            step: 0,
            moments: Vec::new(),
        }
    }

    /// One update of every trainable tensor of `model` from `grads`, at learning rate `lr`.
    pub fn update<M, D>(&mut self, model: &mut M, grads: &Gradients<f32, D>, lr: f64)
    where
        M: TensorCollection<f32, D>,
        D: Device<f32>,
    {
        self.step += 1;
        let mut stepper = Stepper {
            opt: self,
            grads,
            lr,
            index: 0,
        };
        let walked = M::iter_tensors(&mut RecursiveWalker {
            m: (model, String::new()),
            f: &mut stepper,
        });
        if let Err(never) = walked {
            match never {}
        }
    }
}

struct Stepper<'a, D: Device<f32>> {
    opt: &'a mut Optimizer,
    grads: &'a Gradients<f32, D>,
    lr: f64,
    index: usize,
}

impl<D: Device<f32>> TensorVisitor<f32, D> for Stepper<'_, D> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, D>,
        (t, name): (&mut Tensor<S, f32, D>, String),
    ) -> Result<Option<Tensor<S, f32, D>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let grad = read(&self.grads.get(t));
        let mut param = read(t);
        if self.opt.moments.len() == self.index {
            self.opt.moments.push(Moments {
                name,
                m: vec![0.0; param.len()],
                v: vec![0.0; param.len()],
            });
        }
        let moments = &mut self.opt.moments[self.index];
        step(
            &self.opt.spec,
            self.opt.step,
            self.lr,
            &mut param,
            &grad,
            moments,
        );
        t.copy_from(&param);
        self.index += 1;
        Ok(None)
    }
}

/// Elements per rayon task of an update: each is a few flops, so only large tensors split.
const UPDATE_CHUNK: usize = 32 * 1024;

/// The update rule for one tensor, as PyTorch's `Adam`, `AdamW` and `SGD` do it.
fn step(
    spec: &recipe::Optimizer,
    t: u64,
    lr: f64,
    param: &mut [f32],
    grad: &[f32],
    moments: &mut Moments,
) {
    let (lr, wd) = (lr as f32, spec.weight_decay as f32);
    match spec.kind {
        OptimizerKind::Sgd => param
            .par_chunks_mut(UPDATE_CHUNK)
            .zip(grad.par_chunks(UPDATE_CHUNK))
            .for_each(|(param, grad)| {
                for (p, g) in param.iter_mut().zip(grad) {
                    *p -= lr * (g + wd * *p);
                }
            }),
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let (b1, b2, eps) = (spec.betas.0 as f32, spec.betas.1 as f32, spec.eps as f32);
            let c1 = 1.0 - b1.powi(t as i32);
            let c2 = 1.0 - b2.powi(t as i32);
            let decoupled = spec.kind == OptimizerKind::AdamW;
            let chunks = param
                .par_chunks_mut(UPDATE_CHUNK)
                .zip(grad.par_chunks(UPDATE_CHUNK));
            let moment_chunks = moments
                .m
                .par_chunks_mut(UPDATE_CHUNK)
                .zip(moments.v.par_chunks_mut(UPDATE_CHUNK));
            chunks
                .zip(moment_chunks)
                .for_each(|((param, grad), (m, v))| {
                    let it = param.iter_mut().zip(grad).zip(m.iter_mut().zip(v));
                    for ((p, &g), (m, v)) in it {
                        // Adam adds L2 to the gradient; AdamW decays the weight directly.
                        let g = if decoupled { g } else { g + wd * *p };
                        if decoupled {
                            *p -= lr * wd * *p;
                        }
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: OptimizerKind, weight_decay: f64) -> recipe::Optimizer {
        recipe::Optimizer {
            kind,
            lr: 0.1,
            weight_decay,
            betas: (0.9, 0.999),
            eps: 1e-8,
        }
    }

    #[test]
    fn first_adam_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        let mut p = vec![1.0f32, -2.0, 0.5];
        let mut m = Moments {
            name: "w".into(),
            m: vec![0.0; 3],
            v: vec![0.0; 3],
        };
        step(
            &spec(OptimizerKind::Adam, 0.0),
            1,
            0.1,
            &mut p,
            &[0.3, -4.0, 0.0],
            &mut m,
        );
        // Bias-corrected m/sqrt(v) = sign(g) on step 1; a zero gradient does not move.
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6 && p[2] == 0.5,
            "{p:?}"
        );
    }

    #[test]
    fn adamw_decays_weights_without_touching_the_moments() {
        let mut p = vec![2.0f32];
        let mut m = Moments {
            name: "w".into(),
            m: vec![0.0],
            v: vec![0.0],
        };
        step(
            &spec(OptimizerKind::AdamW, 0.5),
            1,
            0.1,
            &mut p,
            &[0.0],
            &mut m,
        );
        assert!((p[0] - 1.9).abs() < 1e-6, "{p:?}");
        assert_eq!((m.m[0], m.v[0]), (0.0, 0.0));
    }

    #[test]
    fn adam_weight_decay_is_l2_added_to_the_gradient() {
        let mut p = vec![2.0f32];
        let mut m = Moments {
            name: "w".into(),
            m: vec![0.0],
            v: vec![0.0],
        };
        step(
            &spec(OptimizerKind::Adam, 0.5),
            1,
            0.1,
            &mut p,
            &[0.0],
            &mut m,
        );
        // g = 0 + 0.5 * 2 = 1 -> first step moves by lr.
        assert!(
            (p[0] - 1.9).abs() < 1e-6 && (m.m[0] - 0.1).abs() < 1e-6,
            "{p:?} {m:?}"
        );
    }
}
