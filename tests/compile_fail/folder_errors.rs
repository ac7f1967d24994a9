// `models!` checks every spec of a folder and reports each one's error, and a spec of a
// folder must be named after its file.
vit_runtime::models!("tests/compile_fail/folders/broken");

fn main() {}
