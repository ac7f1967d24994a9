//! The registry of a `models!` folder: the names of its specs and a dispatch from a name to
//! the compiled type, so that no hand-written code has to name a model.
use super::structure::type_name;
use crate::ir::Model;
use proc_macro2::TokenStream;
use quote::quote;

/// `NAMES` and `visit` for `models` (sorted by name).
pub fn registry(models: &[Model]) -> TokenStream {
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let arms = models.iter().map(|m| {
        let (name, ty) = (&m.name, type_name(&m.name));
        let (c, h, w, k) = (m.input.channels, m.input.height, m.input.width, m.classes);
        quote! {
            #name => ::core::option::Option::Some(visitor.visit::<#ty<f32, D>, #c, #h, #w, #k>()),
        }
    });
    quote! {
        /// The name of every compiled spec, sorted.
        pub const NAMES: &[&str] = &[#(#names),*];

        /// Runs `visitor` with the compiled model named `name`: its type, image channels,
        /// height, width and class count; `None` if no spec has that name.
        #[allow(unused_variables)] // `visitor`, when no spec compiled
        pub fn visit<D, V>(name: &str, visitor: V) -> ::core::option::Option<V::Output>
        where
            D: ::vit_runtime::nn::Kernels,
            V: ::vit_runtime::model::Visitor<D>,
        {
            match name {
                #(#arms)*
                _ => ::core::option::Option::None,
            }
        }
    }
}
