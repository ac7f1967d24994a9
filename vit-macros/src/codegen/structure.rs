//! The generated struct, named after its spec, and how dfdx visits its fields.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

/// The generated type's name: the spec name in CamelCase (`fashion_vit` -> `FashionVit`).
pub(super) fn type_name(spec_name: &str) -> Ident {
    Ident::new(&crate::check::camel_case(spec_name), Span::call_site())
}

/// A named field of the generated struct and how `TensorCollection` visits it.
pub(super) struct Field {
    name: Ident,
    /// Name in checkpoints (timm's).
    key: String,
    ty: TokenStream,
    /// `None` for sub-modules; the `TensorOptions` for plain tensors.
    options: Option<TokenStream>,
}

impl Field {
    pub(super) fn module(name: &str, key: &str, ty: TokenStream) -> Self {
        Field {
            name: format_ident!("{}", name),
            key: key.to_string(),
            ty,
            options: None,
        }
    }
    pub(super) fn tensor(name: &str, ty: TokenStream, options: TokenStream) -> Self {
        Field {
            name: format_ident!("{}", name),
            key: name.to_string(),
            ty,
            options: Some(options),
        }
    }
}

/// The struct, and its `TensorCollection` impl (which gives building, optimisers,
/// safetensors and device moves for free). The impl goes where the init fns it names are.
pub(super) fn struct_and_collection(
    ty: &Ident,
    doc: &str,
    fields: &[Field],
) -> (TokenStream, TokenStream) {
    let dfdx = quote!(::vit_runtime::dfdx);
    let names: Vec<&Ident> = fields.iter().map(|f| &f.name).collect();
    let types: Vec<&TokenStream> = fields.iter().map(|f| &f.ty).collect();
    let visits: Vec<TokenStream> = fields
        .iter()
        .map(|f| {
            let (name, key) = (&f.name, &f.key);
            match &f.options {
                None => quote!(Self::module(#key, |s| &s.#name, |s| &mut s.#name)),
                Some(options) => {
                    quote!(Self::tensor(#key, |s| &s.#name, |s| &mut s.#name, #options))
                }
            }
        })
        .collect();
    // dfdx visits tuples of at most 6 fields: nest them in chunks of 6.
    let chunks: Vec<TokenStream> = visits.chunks(6).map(|c| quote!((#(#c,)*))).collect();
    let patterns: Vec<TokenStream> = names.chunks(6).map(|c| quote!((#(#c,)*))).collect();
    let structure = quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        pub struct #ty<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>> {
            #(pub #names: #types,)*
        }
    };
    let collection = quote! {
        impl<E, D> #dfdx::nn::TensorCollection<E, D> for #ty<E, D>
        where
            E: #dfdx::shapes::Dtype + ::vit_runtime::num_traits::Float + ::vit_runtime::rand_distr::uniform::SampleUniform,
            D: #dfdx::tensor_ops::Device<E>,
        {
            type To<E2: #dfdx::shapes::Dtype, D2: #dfdx::tensor_ops::Device<E2>> = #ty<E2, D2>;

            fn iter_tensors<V: #dfdx::nn::ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> ::core::result::Result<::core::option::Option<Self::To<V::E2, V::D2>>, V::Err> {
                use #dfdx::nn::TensorOptions;
                visitor.visit_fields((#(#chunks,)*), |(#(#patterns,)*)| #ty { #(#names,)* })
            }
        }
    };
    (structure, collection)
}

/// Stands in for the type of a spec that did not compile, whose errors are reported beside
/// it: code that names the type then reports nothing more, so the spec's own errors are not
/// buried under "cannot find type" ones (askama does the same for a broken template).
pub fn stub(spec_name: &str) -> TokenStream {
    let ty = type_name(spec_name);
    let dfdx = quote!(::vit_runtime::dfdx);
    let doc = format!("The spec `{spec_name}` did not compile: this type only stands in for it.");
    quote! {
        #[doc = #doc]
        pub struct #ty<E: #dfdx::shapes::Dtype, D: #dfdx::tensor::Storage<E>>(::core::marker::PhantomData<(E, D)>);
    }
}
