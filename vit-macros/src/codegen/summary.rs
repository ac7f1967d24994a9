//! Parameter count and forward FLOPs of a spec, from its IR alone.
//!
//! The runtime test `parameter_counts_match_pytorch` checks these numbers against the
//! real model (dfdx's own count) and against PyTorch's count of the same architecture.
use crate::ir::{Arch, CnnLayer, Model, Pooling, Positions, Qkv, Vit};
use proc_macro2::TokenStream;
use quote::quote;

/// `vit_runtime::model::Summary { .. }` for `model`.
pub fn summary(model: &Model) -> TokenStream {
    let (kind, params, flops) = (kind(model), params(model), flops(model));
    let (tokens, dim, depth, heads, head_dim, hidden) = match &model.arch {
        Arch::Vit(v) => (
            v.seq_len,
            v.embed_dim,
            v.depth,
            v.heads,
            v.head_dim,
            v.mlp_hidden,
        ),
        Arch::Cnn(_) => (0, 0, 0, 0, 0, 0),
    };
    quote! {
        ::vit_runtime::model::Summary {
            kind: #kind,
            params: #params,
            tokens: #tokens,
            embed_dim: #dim,
            depth: #depth,
            heads: #heads,
            head_dim: #head_dim,
            mlp_hidden: #hidden,
            flops: #flops,
        }
    }
}

fn kind(model: &Model) -> TokenStream {
    match model.arch {
        Arch::Vit(_) => quote!(::vit_runtime::model::Kind::Vit),
        Arch::Cnn(_) => quote!(::vit_runtime::model::Kind::Cnn),
    }
}

/// Trainable parameters, counted the way `sum(p.numel() for p in model.parameters())` does.
pub fn params(model: &Model) -> usize {
    let linear = |i: usize, o: usize| i * o + o;
    match &model.arch {
        Arch::Vit(v) => {
            let d = v.embed_dim;
            let attention = match v.qkv {
                Qkv::Fused => linear(d, 3 * d) + linear(d, d),
                Qkv::PerHead => 3 * v.heads * linear(v.head_dim, v.head_dim),
            };
            let block = 2 * 2 * d + attention + linear(d, v.mlp_hidden) + linear(v.mlp_hidden, d);
            let tokens = d
                * (usize::from(v.pooling == Pooling::Cls) + usize::from(v.distillation.is_some()));
            let positions = if v.positions == Positions::Learned {
                v.seq_len * d
            } else {
                0
            };
            let heads = (1 + usize::from(v.distillation.is_some())) * linear(d, model.classes);
            linear(v.patch_dim, d)
                + tokens
                + positions
                + v.depth * block
                + 2 * d * usize::from(v.final_norm)
                + heads
        }
        Arch::Cnn(c) => c
            .layers
            .iter()
            .map(|layer| match *layer {
                CnnLayer::Conv {
                    in_c,
                    out_c,
                    kernel,
                    ..
                } => out_c * in_c * kernel * kernel + out_c,
                CnnLayer::BatchNorm { c, .. } => 2 * c,
                CnnLayer::Linear { inp, out } => linear(inp, out),
                _ => 0,
            })
            .sum(),
    }
}

/// 2 x multiply-adds of every matmul and conv for one image (norms, softmax and
/// element-wise ops are left out, as in the usual FLOP counts of papers).
pub fn flops(model: &Model) -> u64 {
    let macs: usize = match &model.arch {
        Arch::Vit(v) => vit_macs(v, model.classes),
        Arch::Cnn(c) => c
            .layers
            .iter()
            .map(|layer| match *layer {
                CnnLayer::Conv {
                    in_c,
                    out_c,
                    kernel,
                    out_hw: (h, w),
                    ..
                } => h * w * out_c * in_c * kernel * kernel,
                CnnLayer::Linear { inp, out } => inp * out,
                _ => 0,
            })
            .sum(),
    };
    2 * macs as u64
}

fn vit_macs(v: &Vit, classes: usize) -> usize {
    let (s, d) = (v.seq_len, v.embed_dim);
    let qkv = match v.qkv {
        Qkv::Fused => s * d * 3 * d + s * d * d,
        Qkv::PerHead => 3 * s * v.heads * v.head_dim * v.head_dim,
    };
    let scores_and_mix = 2 * s * s * d;
    let mlp = 2 * s * d * v.mlp_hidden;
    let heads = (1 + usize::from(v.distillation.is_some())) * d * classes;
    v.num_patches * v.patch_dim * d + v.depth * (qkv + scores_and_mix + mlp) + heads
}
