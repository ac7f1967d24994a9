//! The files of `vit-runtime/src` and `vit-macros/src` import one another without cycles.
//!
//! Every file is a node; every path a file names (`use` trees, types, expressions, macro
//! calls aside) that resolves into another file of the crate is an edge to that file. A path
//! resolves to the longest module prefix that is a file: `crate::nn::kernels::Mode` is an
//! edge to `nn/kernels.rs`, `super::Mode` from `nn/kernels/cpu.rs` too. Re-exports count:
//! a module file that re-exports its children must not define what they use. `mod x;` is a
//! declaration and `pub(super)` a visibility, not edges. An inline `#[cfg(test)] mod tests`
//! is left out: it uses its file from above.
//!
//! A cycle is reported as its files in order, so the fix (move the shared item down) is
//! plain from the message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module path inside the crate, `crate` excluded (`["nn", "kernels"]`).
type ModPath = Vec<String>;

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn macro_source_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vit-macros/src");
    root.canonicalize().unwrap_or(root)
}

/// Every `.rs` file below `dir`, with the module path it defines.
fn module_files(root: &Path, dir: &Path, out: &mut BTreeMap<ModPath, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            module_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut segments: ModPath = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                segments.pop();
            }
            out.insert(segments, path);
        }
    }
}

/// Collects the crate-internal paths one file names, resolved to absolute module paths.
struct Paths<'a> {
    /// The module the visitor is in: the file's own, plus any inline `mod` it entered.
    module: ModPath,
    /// Modules that exist as files, to resolve plain `child::x` paths in a parent.
    files: &'a BTreeMap<ModPath, PathBuf>,
    named: Vec<ModPath>,
}

impl Paths<'_> {
    fn resolve(&self, segments: &[String]) -> Option<ModPath> {
        let (base, rest): (ModPath, &[String]) = match segments.first()?.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (self.module.clone(), &segments[1..]),
            "super" => {
                let mut base = self.module.clone();
                let mut rest = segments;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            first => {
                // 2018 paths: a child module of the current one, named without `self::`.
                let mut child = self.module.clone();
                child.push(first.to_string());
                if !self.files.contains_key(&child) {
                    return None;
                }
                (self.module.clone(), segments)
            }
        };
        let mut full = base;
        full.extend(rest.iter().cloned());
        Some(full)
    }

    fn record(&mut self, segments: Vec<String>) {
        if let Some(full) = self.resolve(&segments) {
            self.named.push(full);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.record(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.record(full);
            }
            syn::UseTree::Glob(_) => self.record(prefix.clone()),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.record(segments);
        syn::visit::visit_path(self, path);
    }

    /// `pub(super)` names who may see an item, not a dependency.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    /// An inline `#[cfg(test)]` module tests its file from above, like the crate's users:
    /// its imports are not the file's.
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let test_only = item.attrs.iter().any(|a| {
            a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
        });
        if item.content.is_some() && !test_only {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }
}

/// The file a resolved path lands in: its longest prefix that is a module file.
fn file_of(files: &BTreeMap<ModPath, PathBuf>, path: &ModPath) -> Option<ModPath> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| files.contains_key(prefix))
}

/// The crate's import graph: for each file, the files it names.
fn import_graph(files: &BTreeMap<ModPath, PathBuf>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut graph = BTreeMap::new();
    for (module, path) in files {
        let text = std::fs::read_to_string(path).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut paths = Paths {
            module: module.clone(),
            files,
            named: Vec::new(),
        };
        paths.visit_file(&ast);
        let targets = paths
            .named
            .iter()
            .filter_map(|p| file_of(files, p))
            .filter(|target| target != module)
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

/// One cycle through the graph, if there is any (depth-first search with colours).
fn find_cycle(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn visit(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        done: &mut BTreeSet<ModPath>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

fn display(files: &BTreeMap<ModPath, PathBuf>, cycle: &[ModPath]) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    cycle
        .iter()
        .map(|m| {
            let path = &files[m];
            path.strip_prefix(workspace)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Fails with every cycle: each one found is cut at its closing edge and the search goes on.
fn assert_no_cycles(
    files: &BTreeMap<ModPath, PathBuf>,
    mut graph: BTreeMap<ModPath, BTreeSet<ModPath>>,
) {
    let mut cycles = Vec::new();
    while let Some(cycle) = find_cycle(&graph) {
        let (from, to) = (&cycle[cycle.len() - 2], &cycle[cycle.len() - 1]);
        graph.get_mut(from).unwrap().remove(to);
        cycles.push(display(files, &cycle));
    }
    assert!(
        cycles.is_empty(),
        "{} import cycles (move what both files need into a file below them):\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

/// The module files under `root`, with the module paths they define.
fn files_under(root: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut files = BTreeMap::new();
    module_files(root, root, &mut files);
    files
}

/// The import graph of `files` has no cycle; `at_least` files guard against a walk that
/// found nothing to check.
fn assert_acyclic(files: BTreeMap<ModPath, PathBuf>, at_least: usize) {
    let graph = import_graph(&files);
    assert!(graph.len() >= at_least, "found only {} files", graph.len());
    assert_no_cycles(&files, graph);
}

#[test]
fn library_files_import_each_other_without_cycles() {
    let mut files = files_under(&source_root());
    // The binary is its own crate: `main.rs` and `commands/` name the library as `vit_runtime`.
    files.retain(|m, _| m.first().map(String::as_str) != Some("commands") && m != &["main"]);
    assert_acyclic(files, 50);
}

#[test]
fn binary_files_import_each_other_without_cycles() {
    // The binary crate's root is `main.rs`; its modules are `commands/`.
    let files = files_under(&source_root())
        .into_iter()
        .filter_map(|(m, p)| match m.first().map(String::as_str) {
            Some("main") if m.len() == 1 => Some((Vec::new(), p)),
            Some("commands") => Some((m, p)),
            _ => None,
        })
        .collect();
    assert_acyclic(files, 5);
}

#[test]
fn macro_files_import_each_other_without_cycles() {
    assert_acyclic(files_under(&macro_source_root()), 10);
}

/// The check itself finds a cycle where there is one, and resolves `super` and 2018 paths.
#[test]
fn a_cycle_between_two_files_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("nn")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod nn;").unwrap();
    std::fs::write(
        src.join("nn.rs"),
        "pub mod kernels; pub mod attention; pub use attention::Maps;",
    )
    .unwrap();
    std::fs::write(
        src.join("nn/kernels.rs"),
        "pub fn k(_: crate::nn::attention::Maps) {}",
    )
    .unwrap();
    std::fs::write(
        src.join("nn/attention.rs"),
        "pub struct Maps; fn f() { super::kernels::k(Maps) }",
    )
    .unwrap();
    let graph = import_graph(&files_under(src));
    let nn = vec!["nn".to_string()];
    let attention = vec!["nn".to_string(), "attention".to_string()];
    let kernels = vec!["nn".to_string(), "kernels".to_string()];
    assert_eq!(graph[&nn], BTreeSet::from([attention.clone()]));
    assert_eq!(graph[&kernels], BTreeSet::from([attention.clone()]));
    assert_eq!(graph[&attention], BTreeSet::from([kernels.clone()]));
    let cycle = find_cycle(&graph).expect("a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 3);
}
