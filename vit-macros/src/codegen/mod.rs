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
    let recipe = model.train.to_tokens(&quote!(::vit_runtime::recipe));
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
