//! A recipe as the Rust expression that builds it, for the code `vit-macros` generates.

use crate::{Dataset, OptimizerKind, Recipe, Schedule};
use proc_macro2::TokenStream;
use quote::quote;

impl Recipe {
    /// The expression of this recipe; `path` is where the generated code finds this crate
    /// (`::vit_runtime::recipe`).
    pub fn to_tokens(&self, path: &TokenStream) -> TokenStream {
        let r = path;
        let dataset = match self.dataset {
            Dataset::Mnist => quote!(#r::Dataset::Mnist),
            Dataset::FashionMnist => quote!(#r::Dataset::FashionMnist),
            Dataset::ImageFolder(folder) => {
                let (root, resize) = (folder.root, folder.resize);
                quote!(#r::Dataset::ImageFolder(#r::ImageFolder { root: #root, resize: #resize }))
            }
        };
        let (epochs, batch_size, seed) = (self.epochs, self.batch_size, self.seed);
        let o = &self.optimizer;
        let kind = match o.kind {
            OptimizerKind::Adam => quote!(#r::OptimizerKind::Adam),
            OptimizerKind::AdamW => quote!(#r::OptimizerKind::AdamW),
            OptimizerKind::Sgd => quote!(#r::OptimizerKind::Sgd),
        };
        let (lr, wd, b1, b2, eps) = (o.lr, o.weight_decay, o.betas.0, o.betas.1, o.eps);
        let schedule = match self.schedule {
            Schedule::Constant => quote!(#r::Schedule::Constant),
            Schedule::WarmupCosine {
                warmup_epochs,
                min_lr,
            } => {
                quote!(#r::Schedule::WarmupCosine { warmup_epochs: #warmup_epochs, min_lr: #min_lr })
            }
        };
        let crop = match self.augment.random_crop {
            Some((size, padding)) => quote!(::core::option::Option::Some((#size, #padding))),
            None => quote!(::core::option::Option::None),
        };
        let flip = self.augment.horizontal_flip;
        let (mean, std) = (self.normalize.mean, self.normalize.std);
        quote! {
            #r::Recipe {
                dataset: #dataset,
                epochs: #epochs,
                batch_size: #batch_size,
                seed: #seed,
                optimizer: #r::Optimizer { kind: #kind, lr: #lr, weight_decay: #wd, betas: (#b1, #b2), eps: #eps },
                schedule: #schedule,
                augment: #r::Augment { random_crop: #crop, horizontal_flip: #flip },
                normalize: #r::Normalize { mean: &[#(#mean),*], std: &[#(#std),*] },
            }
        }
    }
}
