//! IR -> Rust tokens: the generated, statically shaped dfdx model. (Being written.)
use crate::ir::Model;
use proc_macro2::TokenStream;
use std::path::Path;

/// Emits the model type for `model`; `teacher` is the validated spec it distils from;
/// `spec_path` is the absolute path, used for `include_str!` so edits trigger rebuilds.
pub fn emit(model: &Model, teacher: Option<&Model>, spec_path: &Path) -> TokenStream {
    let _ = (model, teacher, spec_path);
    TokenStream::new()
}
