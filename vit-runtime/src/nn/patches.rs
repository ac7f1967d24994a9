//! Tokenizers: image -> sequence of patch embeddings.
//!
//! Both variants cut the image into non-overlapping `P x P` patches flattened in
//! `(channel, row, column)` order and apply one `(DIM, PD)` matrix: that *is* a conv
//! with stride = kernel, done as one matmul instead of a sliding window. They differ
//! only in how the matrix is stored (and named), see [`PatchProjection`].
use super::init::uniform_fan_in;
use dfdx::nn::modules::Linear;
use dfdx::prelude::*;

/// `(B, C, H, W) -> (B, N, C*P*P)`, patches in row-major grid order.
pub fn extract_patches<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const P: usize,
    const N: usize,
    const PD: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T>,
) -> Tensor<(B, Const<N>, Const<PD>), f32, D, T> {
    let b = x.shape().0;
    x.reshape_like(&(b, Const::<C>, H / P, Const::<P>, W / P, Const::<P>))
        .permute::<_, Axes6<0, 2, 4, 1, 3, 5>>()
        .reshape_like(&(b, Const::<N>, Const::<PD>))
}

/// The `(DIM, PD)` matrix and bias a tokenizer applies to flattened patches.
pub trait PatchProjection<const PD: usize, const DIM: usize, D: Device<f32>> {
    fn matrix<T: Tape<f32, D>>(&self) -> Tensor<Rank2<DIM, PD>, f32, D, T>;
    fn bias(&self) -> &Tensor<Rank1<DIM>, f32, D>;
}

/// The course's `linear_mapper`: `nn.Linear(PD, DIM)`.
impl<const PD: usize, const DIM: usize, D: Device<f32>> PatchProjection<PD, DIM, D>
    for Linear<PD, DIM, f32, D>
{
    fn matrix<T: Tape<f32, D>>(&self) -> Tensor<Rank2<DIM, PD>, f32, D, T> {
        self.weight.retaped::<T>()
    }
    fn bias(&self) -> &Tensor<Rank1<DIM>, f32, D> {
        &self.bias
    }
}

/// timm's `PatchEmbed.proj`: `nn.Conv2d(C, DIM, kernel_size=P, stride=P)`, weight `(DIM, C, P, P)`.
#[derive(Debug, Clone)]
pub struct PatchConv<
    const C: usize,
    const P: usize,
    const PD: usize,
    const DIM: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub weight: Tensor<Rank4<DIM, C, P, P>, E, D>,
    pub bias: Tensor<Rank1<DIM>, E, D>,
}

impl<
        const C: usize,
        const P: usize,
        const PD: usize,
        const DIM: usize,
        E: Dtype,
        D: Storage<E>,
    > PatchConv<C, P, PD, DIM, E, D>
{
    const CHECK: () = assert!(PD == C * P * P, "PD must be C * P * P");
}

impl<const C: usize, const P: usize, const PD: usize, const DIM: usize, D: Device<f32>>
    PatchProjection<PD, DIM, D> for PatchConv<C, P, PD, DIM, f32, D>
{
    fn matrix<T: Tape<f32, D>>(&self) -> Tensor<Rank2<DIM, PD>, f32, D, T> {
        let () = Self::CHECK;
        self.weight.retaped::<T>().reshape()
    }
    fn bias(&self) -> &Tensor<Rank1<DIM>, f32, D> {
        &self.bias
    }
}

impl<const C: usize, const P: usize, const PD: usize, const DIM: usize, E, D> TensorCollection<E, D>
    for PatchConv<C, P, PD, DIM, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = PatchConv<C, P, PD, DIM, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        let () = Self::CHECK;
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(uniform_fan_in::<_, E, D, PD>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(uniform_fan_in::<_, E, D, PD>),
                ),
            ),
            |(weight, bias)| PatchConv { weight, bias },
        )
    }
}

/// Image `(C, H, W)` -> `N` tokens of width `DIM` through projection `Proj`.
#[derive(Debug, Clone)]
pub struct PatchEmbed<
    const C: usize,
    const H: usize,
    const W: usize,
    const P: usize,
    const N: usize,
    const PD: usize,
    const DIM: usize,
    Proj,
> {
    pub proj: Proj,
}

impl<
        const C: usize,
        const H: usize,
        const W: usize,
        const P: usize,
        const N: usize,
        const PD: usize,
        const DIM: usize,
        Proj,
    > PatchEmbed<C, H, W, P, N, PD, DIM, Proj>
{
    const CHECK: () = {
        assert!(
            P > 0 && H.is_multiple_of(P) && W.is_multiple_of(P),
            "patch must divide the image"
        );
        assert!(N == (H / P) * (W / P), "N must be the number of patches");
        assert!(PD == C * P * P, "PD must be C * P * P");
    };

    /// `(B, C, H, W) -> (B, N, DIM)`.
    pub fn forward<B: Dim, D: super::kernels::Kernels, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T>,
    ) -> Tensor<(B, Const<N>, Const<DIM>), f32, D, T>
    where
        Proj: PatchProjection<PD, DIM, D>,
    {
        let () = Self::CHECK;
        let patches = extract_patches::<B, C, H, W, P, N, PD, D, T>(x);
        super::functional::linear_rows(patches, self.proj.matrix::<T>(), self.proj.bias())
    }
}

impl<
        const C: usize,
        const H: usize,
        const W: usize,
        const P: usize,
        const N: usize,
        const PD: usize,
        const DIM: usize,
        Proj,
        E,
        D,
    > TensorCollection<E, D> for PatchEmbed<C, H, W, P, N, PD, DIM, Proj>
where
    E: Dtype,
    D: Device<E>,
    Proj: TensorCollection<E, D>,
{
    type To<E2: Dtype, D2: Device<E2>> = PatchEmbed<C, H, W, P, N, PD, DIM, Proj::To<E2, D2>>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        let () = Self::CHECK;
        visitor.visit_fields(Self::module("proj", |s| &s.proj, |s| &mut s.proj), |proj| {
            PatchEmbed { proj }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f32 = 1e-5;

    fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= TOL, "{what}[{i}]: got {a}, expected {e}");
        }
    }

    /// Image `(B, C, H, W)` = (2, 3, 8, 12), patch 4: a 2 x 3 grid of 48-wide patches.
    const B: usize = 2;
    const C: usize = 3;
    const H: usize = 8;
    const W: usize = 12;
    const P: usize = 4;
    const N: usize = (H / P) * (W / P);
    const PD: usize = C * P * P;
    const DIM: usize = 5;

    fn image(dev: &Cpu) -> Tensor<Rank4<B, C, H, W>, f32, Cpu> {
        dev.sample_normal()
    }

    #[test]
    fn extract_patches_orders_grid_row_major_and_each_patch_channel_row_column() {
        let dev = Cpu::seed_from_u64(1);
        let x = image(&dev);
        let img = x.as_vec();
        let patches = extract_patches::<Const<B>, C, H, W, P, N, PD, Cpu, NoneTape>(x);
        assert_eq!(patches.shape().concrete(), [B, N, PD]);

        let mut expected = Vec::with_capacity(B * N * PD);
        for b in 0..B {
            for pr in 0..H / P {
                for pc in 0..W / P {
                    for c in 0..C {
                        for y in 0..P {
                            for x in 0..P {
                                expected.push(img[((b * C + c) * H + pr * P + y) * W + pc * P + x]);
                            }
                        }
                    }
                }
            }
        }
        assert_close(&patches.as_vec(), &expected, "patches");
    }

    #[test]
    fn patch_embed_with_conv_projection_is_a_stride_equals_kernel_convolution() {
        let dev = Cpu::seed_from_u64(2);
        let embed: PatchEmbed<C, H, W, P, N, PD, DIM, PatchConv<C, P, PD, DIM, f32, Cpu>> =
            BuildModule::build(&dev);
        let x = image(&dev);
        let img = x.as_vec();
        let weight = embed.proj.weight.as_vec(); // (DIM, C, P, P)
        let bias = embed.proj.bias.as_vec();
        let tokens = embed.forward(x);
        assert_eq!(tokens.shape().concrete(), [B, N, DIM]);

        // Conv2d(C, DIM, kernel P, stride P): output pixel (i, j) is token i * (W / P) + j.
        let mut expected = vec![0.0f32; B * N * DIM];
        for b in 0..B {
            for i in 0..H / P {
                for j in 0..W / P {
                    for o in 0..DIM {
                        let mut sum = bias[o] as f64;
                        for c in 0..C {
                            for ky in 0..P {
                                for kx in 0..P {
                                    let w = weight[((o * C + c) * P + ky) * P + kx] as f64;
                                    let v =
                                        img[((b * C + c) * H + i * P + ky) * W + j * P + kx] as f64;
                                    sum += w * v;
                                }
                            }
                        }
                        expected[(b * N + i * (W / P) + j) * DIM + o] = sum as f32;
                    }
                }
            }
        }
        assert_close(&tokens.as_vec(), &expected, "tokens");
    }

    #[test]
    fn patch_embed_with_linear_projection_applies_the_linear_map_to_each_flattened_patch() {
        let dev = Cpu::seed_from_u64(3);
        let embed: PatchEmbed<C, H, W, P, N, PD, DIM, Linear<PD, DIM, f32, Cpu>> =
            BuildModule::build(&dev);
        let x = image(&dev);
        let patches =
            extract_patches::<Const<B>, C, H, W, P, N, PD, Cpu, NoneTape>(x.clone()).as_vec();
        let (weight, bias) = (embed.proj.weight.as_vec(), embed.proj.bias.as_vec()); // (DIM, PD), (DIM)
        let tokens = embed.forward(x);

        let mut expected = Vec::with_capacity(B * N * DIM);
        for row in patches.chunks(PD) {
            for o in 0..DIM {
                let dot: f64 = (0..PD)
                    .map(|k| weight[o * PD + k] as f64 * row[k] as f64)
                    .sum();
                expected.push((dot + bias[o] as f64) as f32);
            }
        }
        assert_close(&tokens.as_vec(), &expected, "tokens");
    }
}
