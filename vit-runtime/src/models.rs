//! The models of `models/*.yaml`, compiled by `vit-macros`.
//!
//! Every spec of the folder becomes a statically shaped type named after it (`lightvit` ->
//! `Lightvit`); [`NAMES`] lists them and [`visit`] dispatches a name to its type. The build
//! script makes cargo rebuild this module when a spec is added or removed.

crate::models!("models");
