//! Rebuilds the crate when a spec is added to, removed from or edited in `models/`: the
//! `models!` macro reads the folder, but a proc-macro cannot ask cargo to watch a folder.
fn main() {
    println!("cargo:rerun-if-changed=../models");
}
