//! `model!("models/vit.yaml")`: compiles a YAML Vision Transformer (or CNN) spec into a
//! statically shaped dfdx network, so that an impossible spec is a compile error located in
//! the YAML. `models!("models")` does so for every spec of a folder and adds the registry
//! that names them (`NAMES`, `visit`).
//!
//! Pipeline: read the file -> [`spec::parse`] -> [`check::check`] (and the teacher it names,
//! [`check::check_teacher`]) -> [`codegen::emit`]. Only this file touches `proc_macro` and the
//! file system; the stages work on plain values and `proc_macro2`.

extern crate proc_macro;

mod check;
mod codegen;
mod diagnostic;
mod ir;
mod spec;

use diagnostic::{did_you_mean, Diagnostic, SourceFile};
use proc_macro2::TokenStream;
use quote::quote;
use std::path::{Path, PathBuf};
use syn::LitStr;

/// `model!("path/to/spec.yaml")`: the path is relative to the invoking crate's directory or,
/// failing that, to one of its ancestors (so `models/...` also works from a workspace member).
#[proc_macro]
pub fn model(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let lit = syn::parse_macro_input!(input as LitStr);
    expand(&lit, &search_roots())
        .map(|(tokens, _)| tokens)
        .unwrap_or_else(Failed::into_tokens)
        .into()
}

/// `models!("models")`: every `*.yaml` of the folder (found like `model!`'s path), each
/// compiled as by `model!`, and the registry of those that compiled: `NAMES` and `visit`.
///
/// Every spec's errors are reported, not only the first spec's. A proc-macro cannot ask
/// cargo to watch a folder, so the crate's build script should print
/// `cargo:rerun-if-changed=<folder>`: then adding or removing a spec rebuilds the crate
/// (editing one does anyway, through the `include_str!` of each spec).
#[proc_macro]
pub fn models(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let lit = syn::parse_macro_input!(input as LitStr);
    expand_folder(&lit, &search_roots())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The invoking crate's directory and the directory of the invoking file.
fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    // A crate built outside its source tree (trybuild's, under CARGO_TARGET_DIR) finds the
    // spec next to the file that invokes the macro instead.
    if let Some(dir) = proc_macro::Span::call_site()
        .local_file()
        .and_then(|f| std::path::absolute(f).ok())
        .and_then(|f| f.parent().map(Path::to_path_buf))
    {
        roots.push(dir);
    }
    roots
}

/// A spec that did not compile: all its errors, and the stand-in for its type
/// ([`codegen::stub`]) once its name is known.
struct Failed {
    errors: syn::Error,
    stub: TokenStream,
}

impl From<syn::Error> for Failed {
    fn from(errors: syn::Error) -> Self {
        Failed {
            errors,
            stub: TokenStream::new(),
        }
    }
}

impl Failed {
    fn into_tokens(self) -> TokenStream {
        let mut tokens = self.errors.into_compile_error();
        tokens.extend(self.stub);
        tokens
    }
}

/// Everything `model!` does, given the directories to search the spec from: the tokens
/// and the checked model.
fn expand(lit: &LitStr, roots: &[PathBuf]) -> Result<(TokenStream, ir::Model), Failed> {
    let written = lit.value();
    let error = |message: String| syn::Error::new(lit.span(), message);
    let path = find(Path::new(&written), roots).ok_or_else(|| {
        error(format!("spec file `{written}` not found in the crate's directory (CARGO_MANIFEST_DIR) or any directory above it"))
    })?;
    expand_file(lit, &path, written, false)
}

/// Parses, checks and emits the spec at `path` (shown to users as `written`). A spec of a
/// `models!` folder (`in_folder`) must have its file's name: the registry, the teacher
/// lookup and `runs/<name>` all find a spec by its file name.
fn expand_file(
    lit: &LitStr,
    path: &Path,
    written: String,
    in_folder: bool,
) -> Result<(TokenStream, ir::Model), Failed> {
    let error = |message: String| syn::Error::new(lit.span(), message);
    let file = read(path, written).map_err(error)?;
    let spec = spec::parse(&file.text).map_err(|d| error(d.render(&file)))?;
    // From here on the spec's name is known: a failure still defines its type, as a stub.
    let failed = |diagnostics: Vec<Diagnostic>| {
        let mut rendered = diagnostics.iter().map(|d| error(d.render(&file)));
        let mut errors = rendered
            .next()
            .unwrap_or_else(|| error("invalid spec".into()));
        rendered.for_each(|e| errors.combine(e));
        let stub = if check::is_identifier(&spec.name) {
            codegen::stub(&spec.name)
        } else {
            TokenStream::new()
        };
        Failed { errors, stub }
    };
    let model = check::check(&spec).map_err(failed)?;
    if in_folder {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        check::name_matches_file(&spec, &model.name, stem.as_deref().unwrap_or(""))
            .map_err(|d| failed(vec![d]))?;
    }
    let teacher = match &model.arch {
        ir::Arch::Vit(ir::Vit {
            distillation: Some(d),
            ..
        }) => Some(
            load_teacher(&spec, &model, &file, path, &d.teacher).map_err(|d| failed(vec![d]))?,
        ),
        _ => None,
    };
    let mut tokens = codegen::emit(&model, teacher.as_ref().map(|(m, _)| m), path);
    if let Some((_, teacher_path)) = teacher {
        // Like the student's own `include_str!` in `emit`: rebuild when the teacher changes.
        let teacher_path = teacher_path.to_string_lossy();
        tokens.extend(quote! { const _: &str = include_str!(#teacher_path); });
    }
    Ok((tokens, model))
}

/// Everything `models!` does: each spec of the folder, then the registry of those that
/// compiled; the errors of all the others.
fn expand_folder(lit: &LitStr, roots: &[PathBuf]) -> syn::Result<TokenStream> {
    let written = lit.value();
    let error = |message: String| syn::Error::new(lit.span(), message);
    let dir = roots
        .iter()
        .flat_map(|root| root.ancestors())
        .map(|dir| dir.join(&written))
        .find(|p| p.is_dir())
        .ok_or_else(|| {
            error(format!("spec folder `{written}` not found in the crate's directory (CARGO_MANIFEST_DIR) or any directory above it"))
        })?;
    let names = sibling_specs(&dir.join("_"));
    if names.is_empty() {
        return Err(error(format!(
            "spec folder `{written}` holds no `.yaml` file"
        )));
    }
    let mut tokens = TokenStream::new();
    let mut models = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for name in names {
        let path = dir.join(format!("{name}.yaml"));
        let shown = Path::new(&written)
            .join(format!("{name}.yaml"))
            .to_string_lossy()
            .into_owned();
        match expand_file(lit, &path, shown, true) {
            Ok((model_tokens, model)) => {
                tokens.extend(model_tokens);
                models.push(model);
            }
            Err(failed) => {
                tokens.extend(failed.stub);
                match &mut errors {
                    Some(all) => all.combine(failed.errors),
                    None => errors = Some(failed.errors),
                }
            }
        }
    }
    if let Some(errors) = errors {
        tokens.extend(errors.into_compile_error());
    }
    tokens.extend(codegen::registry(&models));
    Ok(tokens)
}

/// The first `<dir>/<written>` that is a file, for each root and each ancestor of it.
fn find(written: &Path, roots: &[PathBuf]) -> Option<PathBuf> {
    roots
        .iter()
        .flat_map(|root| root.ancestors())
        .map(|dir| dir.join(written))
        .find(|p| p.is_file())
}

fn read(path: &Path, display: String) -> Result<SourceFile, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SourceFile { display, text }),
        Err(e) => Err(format!("cannot read spec file `{display}`: {e}")),
    }
}

/// Loads, parses and checks `<student's dir>/<name>.yaml` as the student's teacher; every
/// error points at the student's `teacher:` value.
fn load_teacher(
    student: &spec::Spec,
    model: &ir::Model,
    file: &SourceFile,
    path: &Path,
    name: &str,
) -> Result<(ir::Model, PathBuf), Diagnostic> {
    let at = student.locations.value(check::TEACHER_PATH);
    let file_name = format!("{name}.yaml");
    let teacher_path = path.with_file_name(&file_name);
    let display = Path::new(&file.display)
        .with_file_name(&file_name)
        .to_string_lossy()
        .into_owned();
    if !teacher_path.is_file() {
        let siblings = sibling_specs(path);
        let mut d = Diagnostic::new(
            format!("teacher spec `{name}` not found: there is no `{display}`"),
            at,
        );
        if let Some(close) = did_you_mean(name, siblings.iter().map(String::as_str)) {
            d = d.help(format!("did you mean `{close}`?"));
        }
        let mut listed = siblings
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if siblings.len() > 8 {
            listed += &format!(" and {} more", siblings.len() - 8);
        }
        return Err(d.note(format!(
            "`teacher` names a spec file in the same directory: {listed}"
        )));
    }
    let teacher_file = read(&teacher_path, display).map_err(|e| Diagnostic::new(e, at))?;
    let invalid = |d| {
        Diagnostic::new(format!("teacher spec `{name}` is invalid"), at).caused_by(
            "in the teacher spec",
            teacher_file.clone(),
            d,
        )
    };
    let teacher = spec::parse(&teacher_file.text).map_err(invalid)?;
    let teacher_model = check::check_teacher(student, model, &teacher, &teacher_file)?;
    Ok((teacher_model, teacher_path))
}

/// Names of the `.yaml` specs next to `path`, sorted.
fn sibling_specs(path: &Path) -> Vec<String> {
    let dir = path.parent().and_then(|d| std::fs::read_dir(d).ok());
    let mut names: Vec<String> = dir
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".yaml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(path: &str) -> syn::Result<TokenStream> {
        let lit = LitStr::new(path, proc_macro2::Span::call_site());
        expand(&lit, &[PathBuf::from(env!("CARGO_MANIFEST_DIR"))])
            .map(|(tokens, _)| tokens)
            .map_err(|failed| failed.errors)
    }

    #[test]
    fn finds_specs_in_an_ancestor_of_the_crate() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let found = find(Path::new("models/vit.yaml"), &[root.join("src")]).unwrap();
        assert_eq!(
            found.canonicalize().unwrap(),
            root.join("../models/vit.yaml").canonicalize().unwrap()
        );
        assert_eq!(find(Path::new("models/nope.yaml"), &[root]), None);
    }

    #[test]
    fn expands_every_shipped_model() {
        for name in ["lightvit", "vit", "deit", "cnn"] {
            if let Err(e) = expand_str(&format!("models/{name}.yaml")) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn tracks_the_teacher_file() {
        let tokens = expand_str("models/deit.yaml").unwrap().to_string();
        assert!(
            tokens.contains("include_str !") && tokens.contains("cnn.yaml"),
            "{tokens}"
        );
    }

    #[test]
    fn missing_file_names_the_path_as_written() {
        let e = expand_str("models/nope.yaml").unwrap_err().to_string();
        assert!(
            e.starts_with("spec file `models/nope.yaml` not found"),
            "{e}"
        );
    }

    #[test]
    fn missing_teacher_points_at_the_teacher_line_and_suggests_a_sibling() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let student =
            spec::parse(&std::fs::read_to_string(root.join("models/deit.yaml")).unwrap()).unwrap();
        let model = check::check(&student).unwrap();
        let file = SourceFile {
            display: "models/deit.yaml".into(),
            text: String::new(),
        };
        let d = load_teacher(
            &student,
            &model,
            &file,
            &root.join("models/deit.yaml"),
            "cnnn",
        )
        .unwrap_err();
        assert_eq!(
            d.message,
            "teacher spec `cnnn` not found: there is no `models/cnnn.yaml`"
        );
        assert_eq!(d.span, diagnostic::Span::new(22, 28, 3));
        assert_eq!(d.help, ["did you mean `cnn`?"]);
    }
}
