//! Every impossible spec is a compile error that points into its YAML file.
//!
//! Each `compile_fail/*.rs` expands `vit_runtime::model!` on a broken spec from
//! `compile_fail/specs/` (or on a good one, misused); the committed `.stderr` next to it is the
//! exact error. Regenerate with `TRYBUILD=overwrite cargo test -p vit-runtime --test compile_fail`
//! and read the diff.

#[test]
fn impossible_specs_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("../tests/compile_fail/*.rs");
}
