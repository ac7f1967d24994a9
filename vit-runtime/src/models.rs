//! The models of `models/*.yaml`, compiled by `vit-macros`.
//!
//! Each `model!` call reads its spec at build time, checks every shape, and emits a
//! statically shaped type named after the spec (`lightvit` -> `Lightvit`).

crate::model!("models/lightvit.yaml");
crate::model!("models/vit.yaml");
crate::model!("models/cnn.yaml");
crate::model!("models/deit.yaml");
