//! IR -> Rust tokens: the statically shaped dfdx model of a spec.
//!
//! Every size is emitted as a literal taken from the IR; no dimension is derived here.
//! The generated code only composes `vit_runtime::nn` layers, so what a layer does is
//! written (and tested) once, in the runtime.

mod cnn;
mod registry;
mod structure;
mod summary;
mod vit;

pub use registry::registry;
pub use structure::stub;

use crate::ir::{self, Arch, Model};
use proc_macro2::{Ident, TokenStream};
use quote::quote;
use std::path::Path;
use structure::type_name;

/// Emits the model type for `model`; `teacher` is the validated spec it distils from;
/// `spec_path` is the absolute path, used for `include_str!` so edits trigger rebuilds.
pub fn emit(model: &Model, teacher: Option<&Model>, spec_path: &Path) -> TokenStream {
    let ty = type_name(&model.name);
    let body = match &model.arch {
        Arch::Vit(vit) => vit::emit(model, vit, &ty, teacher),
        Arch::Cnn(cnn) => cnn::emit(model, cnn, &ty),
    };
    let spec = spec_impl(model, &ty, spec_path);
    quote! {
        #body
        #spec
    }
}

/// `impl ModelSpec`: the spec text, recipe, sizes and distillation settings as consts.
fn spec_impl(model: &Model, ty: &Ident, spec_path: &Path) -> TokenStream {
    let path = spec_path.to_string_lossy();
    let name = &model.name;
    let recipe = recipe(&model.train);
    let summary = summary::summary(model);
    let distillation = match &model.arch {
        Arch::Vit(ir::Vit {
            distillation: Some(d),
            ..
        }) => {
            let teacher = &d.teacher;
            let alpha = d.alpha as f32;
            let loss = match d.loss {
                ir::DistillLoss::Hard => quote!(::vit_runtime::model::DistillLoss::Hard),
                ir::DistillLoss::Soft { tau } => {
                    let tau = tau as f32;
                    quote!(::vit_runtime::model::DistillLoss::Soft { tau: #tau })
                }
            };
            quote!(::core::option::Option::Some(::vit_runtime::model::Distillation { teacher: #teacher, loss: #loss, alpha: #alpha }))
        }
        _ => quote!(::core::option::Option::None),
    };
    quote! {
        impl<E: ::vit_runtime::dfdx::shapes::Dtype, D: ::vit_runtime::dfdx::tensor::Storage<E>>
            ::vit_runtime::model::ModelSpec for #ty<E, D>
        {
            const NAME: &'static str = #name;
            // `include_str!` makes rustc track the YAML: editing it rebuilds the model.
            const SPEC_YAML: &'static str = include_str!(#path);
            const RECIPE: ::vit_runtime::recipe::Recipe = #recipe;
            const SUMMARY: ::vit_runtime::model::Summary = #summary;
            const DISTILLATION: ::core::option::Option<::vit_runtime::model::Distillation> = #distillation;
        }
    }
}

fn recipe(train: &ir::Train) -> TokenStream {
    let r = quote!(::vit_runtime::recipe);
    let dataset = match &train.dataset {
        ir::Dataset::Mnist => quote!(#r::Dataset::Mnist),
        ir::Dataset::FashionMnist => quote!(#r::Dataset::FashionMnist),
        ir::Dataset::ImageFolder { root, resize } => {
            quote!(#r::Dataset::ImageFolder(#r::ImageFolder { root: #root, resize: #resize }))
        }
    };
    let (epochs, batch_size, seed) = (train.epochs, train.batch_size, train.seed);
    let o = &train.optimizer;
    let kind = match o.kind {
        ir::OptimizerKind::Adam => quote!(#r::OptimizerKind::Adam),
        ir::OptimizerKind::AdamW => quote!(#r::OptimizerKind::AdamW),
        ir::OptimizerKind::Sgd => quote!(#r::OptimizerKind::Sgd),
    };
    let (lr, wd, b1, b2, eps) = (o.lr, o.weight_decay, o.betas.0, o.betas.1, o.eps);
    let schedule = match train.schedule {
        ir::Schedule::Constant => quote!(#r::Schedule::Constant),
        ir::Schedule::WarmupCosine {
            warmup_epochs,
            min_lr,
        } => {
            quote!(#r::Schedule::WarmupCosine { warmup_epochs: #warmup_epochs, min_lr: #min_lr })
        }
    };
    let crop = match train.augment.random_crop {
        Some((size, padding)) => quote!(::core::option::Option::Some((#size, #padding))),
        None => quote!(::core::option::Option::None),
    };
    let flip = train.augment.horizontal_flip;
    let as_f32 = |values: &[f64]| values.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let (mean, std) = (as_f32(&train.normalize.mean), as_f32(&train.normalize.std));
    quote! {
        #r::Recipe {
            dataset: #dataset,
            epochs: #epochs,
            batch_size: #batch_size,
            seed: #seed,
            optimizer: #r::Optimizer { kind: #kind, lr: #lr, weight_decay: #wd, betas: (#b1, #b2), eps: #eps },
            schedule: #schedule,
            augment: #r::Augment { random_crop: #crop, horizontal_flip: #flip },
            normalize: #r::Normalize { mean: &[#(#mean),*], std: &[#(#std),*] },
        }
    }
}
