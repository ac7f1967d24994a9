//! Conv and pooling layers with all sizes known at compile time.
//!
//! dfdx 0.13's conv and pool ops (module- and tensor-level) only exist behind its
//! `nightly` feature. So a conv is [`Kernels::conv2d`]: on the CPU a fused im2col and
//! product per image; elsewhere built from stable ops that dfdx differentiates (zero padding
//! by concatenation, the `K*K` shifted, strided windows stacked into an im2col matrix, and
//! one matmul). Pooling reduces the same stacked windows with a max or a mean. vit-macros computes every output size and passes it in as a const
//! parameter; the `CHECK` consts prove the sizes consistent at compile time.
use super::kernels::composite::windows;
use super::kernels::{Epilogue, Kernels, Window};
use dfdx::prelude::*;

/// How a pooling window is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Max,
    Avg,
}

/// `floor((input + 2 padding - kernel) / stride) + 1`, PyTorch's conv/pool output size.
pub const fn conv_out(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (input + 2 * padding - kernel) / stride + 1
}

/// `nn.Conv2d(CI, CO, K, stride=STRIDE, padding=PAD)` on `(CI, HI, WI)` maps giving `(CO, HO, WO)`.
#[derive(Debug, Clone)]
pub struct Conv2d<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const STRIDE: usize,
    const PAD: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    E: Dtype,
    D: Storage<E>,
> {
    pub weight: Tensor<Rank4<CO, CI, K, K>, E, D>,
    pub bias: Tensor<Rank1<CO>, E, D>,
}

impl<
        const CI: usize,
        const CO: usize,
        const K: usize,
        const STRIDE: usize,
        const PAD: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        E: Dtype,
        D: Storage<E>,
    > Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, E, D>
{
    const CHECK: () = {
        assert!(K > 0 && STRIDE > 0, "kernel and stride must be positive");
        assert!(
            HI + 2 * PAD >= K && WI + 2 * PAD >= K,
            "kernel larger than padded input"
        );
        assert!(
            HO == conv_out(HI, K, STRIDE, PAD) && WO == conv_out(WI, K, STRIDE, PAD),
            "wrong output size"
        );
    };
}

impl<
        const CI: usize,
        const CO: usize,
        const K: usize,
        const STRIDE: usize,
        const PAD: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        E,
        D,
    > TensorCollection<E, D> for Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, E, D>
where
    E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        let () = Self::CHECK;
        // PyTorch's default init, U(+-1/sqrt(fan_in)) with fan_in = CI * K * K.
        fn init<S: Shape, E, D, const CI: usize, const K: usize>(
            t: &mut Tensor<S, E, D>,
        ) -> Result<(), D::Err>
        where
            E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
            D: Device<E>,
        {
            super::init::fill_uniform_fan_in(t, CI * K * K)
        }
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(init::<_, E, D, CI, K>),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(init::<_, E, D, CI, K>),
                ),
            ),
            |(weight, bias)| Conv2d { weight, bias },
        )
    }
}

impl<
        const CI: usize,
        const CO: usize,
        const K: usize,
        const STRIDE: usize,
        const PAD: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        D: Kernels,
    > Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, f32, D>
{
    /// `(B, CI, HI, WI) -> (B, CO, HO, WO)`.
    pub fn forward<B: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<CI>, Const<HI>, Const<WI>), f32, D, T>,
    ) -> Tensor<(B, Const<CO>, Const<HO>, Const<WO>), f32, D, T> {
        self.forward_then(x, Epilogue::Identity)
    }

    /// [`Self::forward`], then `epilogue` in the same op (a spec's `conv` then `relu`).
    pub fn forward_then<B: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<CI>, Const<HI>, Const<WI>), f32, D, T>,
        epilogue: Epilogue,
    ) -> Tensor<(B, Const<CO>, Const<HO>, Const<WO>), f32, D, T> {
        let () = Self::CHECK;
        let b = x.shape().0;
        let x = x.reshape_like(&(b.size(), CI, HI, WI));
        let window = Window {
            k: K,
            stride: STRIDE,
            padding: PAD,
            out: (HO, WO),
        };
        // PyTorch's (CO, CI, K, K) weight as (CO, CI * K * K): a reshape, no copy.
        let weight = self
            .weight
            .retaped::<T>()
            .reshape_like(&(Const::<CO>, CI * K * K));
        D::conv2d(x, weight, &self.bias, window, epilogue).reshape_like(&(
            b,
            Const::<CO>,
            Const::<HO>,
            Const::<WO>,
        ))
    }
}

/// Max or average pooling without padding, `(B, C, HI, WI) -> (B, C, HO, WO)`
/// with PyTorch's floor output size.
pub fn pool2d<
    B: Dim,
    const C: usize,
    const K: usize,
    const STRIDE: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    D: Kernels,
    T: Tape<f32, D>,
>(
    x: Tensor<(B, Const<C>, Const<HI>, Const<WI>), f32, D, T>,
    pool: Pool,
) -> Tensor<(B, Const<C>, Const<HO>, Const<WO>), f32, D, T> {
    struct Check<
        const HI: usize,
        const WI: usize,
        const K: usize,
        const S: usize,
        const HO: usize,
        const WO: usize,
    >;
    impl<
            const HI: usize,
            const WI: usize,
            const K: usize,
            const S: usize,
            const HO: usize,
            const WO: usize,
        > Check<HI, WI, K, S, HO, WO>
    {
        const OK: () = assert!(
            K > 0
                && S > 0
                && HI >= K
                && WI >= K
                && HO == conv_out(HI, K, S, 0)
                && WO == conv_out(WI, K, S, 0),
            "pool window must fit the input and HO, WO must be its output size"
        );
    }
    let () = Check::<HI, WI, K, STRIDE, HO, WO>::OK;
    let b = x.shape().0;
    let x = x.reshape_like(&(b.size(), C, HI, WI));
    let window = Window {
        k: K,
        stride: STRIDE,
        padding: 0,
        out: (HO, WO),
    };
    let pooled = match pool {
        Pool::Max => D::max_pool(x, window),
        Pool::Avg => windows(x, K, STRIDE, 0, (HO, WO))
            .stack()
            .mean::<_, Axis<0>>(),
    };
    pooled
        .try_realize::<(B, Const<C>, Const<HO>, Const<WO>)>()
        .unwrap_or_else(|_| panic!("pool output size is checked at compile time"))
}

/// `(B, C, H, W) -> (B, C*H*W)` in PyTorch's `flatten(1)` order.
pub fn flatten<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    const F: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    x: Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T>,
) -> Tensor<(B, Const<F>), f32, D, T> {
    struct Check<const C: usize, const H: usize, const W: usize, const F: usize>;
    impl<const C: usize, const H: usize, const W: usize, const F: usize> Check<C, H, W, F> {
        const OK: () = assert!(F == C * H * W, "F must be C * H * W");
    }
    let () = Check::<C, H, W, F>::OK;
    let b = x.shape().0;
    x.reshape_like(&(b, Const::<F>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: &[f32], expected: &[f64], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (*a as f64 - e).abs() <= 1e-5,
                "{what}[{i}]: got {a}, expected {e}"
            );
        }
    }

    /// PyTorch's `nn.Conv2d` by definition: zero padding, cross-correlation, `(CO, CI, K, K)` weight.
    #[allow(clippy::too_many_arguments)]
    fn naive_conv(
        x: &[f32],
        (b, ci, hi, wi): (usize, usize, usize, usize),
        weight: &[f32],
        bias: &[f32],
        (co, k): (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Vec<f64> {
        let (ho, wo) = (conv_out(hi, k, stride, pad), conv_out(wi, k, stride, pad));
        let mut out = Vec::with_capacity(b * co * ho * wo);
        for n in 0..b {
            for o in 0..co {
                for i in 0..ho {
                    for j in 0..wo {
                        let mut sum = bias[o] as f64;
                        for c in 0..ci {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (y, x_) = (
                                        (i * stride + ky) as isize - pad as isize,
                                        (j * stride + kx) as isize - pad as isize,
                                    );
                                    if y < 0 || x_ < 0 || y >= hi as isize || x_ >= wi as isize {
                                        continue;
                                    }
                                    let v = x[((n * ci + c) * hi + y as usize) * wi + x_ as usize]
                                        as f64;
                                    sum += weight[((o * ci + c) * k + ky) * k + kx] as f64 * v;
                                }
                            }
                        }
                        out.push(sum);
                    }
                }
            }
        }
        out
    }

    fn check_conv<const STRIDE: usize, const PAD: usize, const HO: usize, const WO: usize>(
        seed: u64,
    ) {
        let dev = Cpu::seed_from_u64(seed);
        let conv: Conv2d<2, 3, 3, STRIDE, PAD, 5, 6, HO, WO, f32, Cpu> = BuildModule::build(&dev);
        let x: Tensor<Rank4<2, 2, 5, 6>, f32, Cpu> = dev.sample_normal();
        let expected = naive_conv(
            &x.as_vec(),
            (2, 2, 5, 6),
            &conv.weight.as_vec(),
            &conv.bias.as_vec(),
            (3, 3),
            STRIDE,
            PAD,
        );
        let y = conv.forward(x);
        assert_eq!(y.shape().concrete(), [2, 3, HO, WO]);
        assert_close(&y.as_vec(), &expected, "conv");
    }

    #[test]
    fn conv2d_with_padding_matches_naive_convolution() {
        check_conv::<1, 1, 5, 6>(30);
    }

    #[test]
    fn conv2d_without_padding_matches_naive_convolution() {
        check_conv::<1, 0, 3, 4>(31);
    }

    #[test]
    fn conv2d_with_stride_two_matches_naive_convolution() {
        // conv_out(5, 3, 2, 1) = 3, conv_out(6, 3, 2, 1) = 3.
        check_conv::<2, 1, 3, 3>(32);
    }

    #[test]
    fn conv_out_is_pytorchs_output_size() {
        assert_eq!(conv_out(28, 3, 1, 1), 28);
        assert_eq!(conv_out(5, 3, 1, 0), 3);
        assert_eq!(conv_out(6, 3, 2, 1), 3);
        assert_eq!(conv_out(7, 2, 2, 0), 3);
    }

    /// Gradients of `sum(conv(x) * r)` by hand: (d/dx, d/dweight, d/dbias), stride 1.
    fn naive_conv_grads(x: &[f32], weight: &[f32], r: &[f32], pad: usize) -> Grads<f64> {
        let (b, ci, hi, wi, co, k) = (2, 2, 5, 6, 3, 3);
        let (ho, wo) = (conv_out(hi, k, 1, pad), conv_out(wi, k, 1, pad));
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; weight.len()], vec![0.0; co]);
        for n in 0..b {
            for o in 0..co {
                for i in 0..ho {
                    for j in 0..wo {
                        let g = r[((n * co + o) * ho + i) * wo + j] as f64;
                        db[o] += g;
                        for c in 0..ci {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (y, x_) = (
                                        (i + ky) as isize - pad as isize,
                                        (j + kx) as isize - pad as isize,
                                    );
                                    if y < 0 || x_ < 0 || y >= hi as isize || x_ >= wi as isize {
                                        continue;
                                    }
                                    let xi = ((n * ci + c) * hi + y as usize) * wi + x_ as usize;
                                    let wi_ = ((o * ci + c) * k + ky) * k + kx;
                                    dx[xi] += g * weight[wi_] as f64;
                                    dw[wi_] += g * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        (dx, dw, db)
    }

    /// (d/dx, d/dweight, d/dbias).
    type Grads<T> = (Vec<T>, Vec<T>, Vec<T>);

    /// Backward of `sum(conv(x) * r)` through `Conv2d`, and by hand.
    fn conv_grads(seed: u64) -> (Grads<f32>, Grads<f64>) {
        let dev = Cpu::seed_from_u64(seed);
        let conv: Conv2d<2, 3, 3, 1, 1, 5, 6, 5, 6, f32, Cpu> = BuildModule::build(&dev);
        let x: Tensor<Rank4<2, 2, 5, 6>, f32, Cpu> = dev.sample_normal();
        let r: Tensor<Rank4<2, 3, 5, 6>, f32, Cpu> = dev.sample_normal();
        let expected = naive_conv_grads(&x.as_vec(), &conv.weight.as_vec(), &r.as_vec(), 1);
        let mut grads = (conv.forward(x.leaky_trace()) * r.clone()).sum().backward();
        // A tensor the backward pass never reached has no gradient entry: read it as zeros.
        grads.try_alloc_for(&x).unwrap();
        grads.try_alloc_for(&conv.weight).unwrap();
        grads.try_alloc_for(&conv.bias).unwrap();
        let got = (
            grads.get(&x).as_vec(),
            grads.get(&conv.weight).as_vec(),
            grads.get(&conv.bias).as_vec(),
        );
        (got, expected)
    }

    #[test]
    fn conv2d_backward_gives_naive_weight_and_bias_gradients() {
        let ((_, dw, db), (_, expected_dw, expected_db)) = conv_grads(35);
        assert_close(&dw, &expected_dw, "d/dweight");
        assert_close(&db, &expected_db, "d/dbias");
    }

    #[test]
    fn conv2d_backward_passes_the_gradient_on_to_its_input() {
        // Without this, every layer before a conv (earlier convs included) never learns.
        let ((dx, _, _), (expected_dx, _, _)) = conv_grads(36);
        assert_close(&dx, &expected_dx, "d/dx");
    }

    fn naive_pool(
        x: &[f32],
        (b, c, hi, wi): (usize, usize, usize, usize),
        k: usize,
        pool: Pool,
    ) -> Vec<f64> {
        let mut out = Vec::new();
        for n in 0..b * c {
            for i in 0..hi / k {
                for j in 0..wi / k {
                    let window: Vec<f64> = (0..k * k)
                        .map(|w| x[(n * hi + i * k + w / k) * wi + j * k + w % k] as f64)
                        .collect();
                    out.push(match pool {
                        Pool::Max => window.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                        Pool::Avg => window.iter().sum::<f64>() / (k * k) as f64,
                    });
                }
            }
        }
        out
    }

    #[test]
    fn pool2d_max_and_avg_match_naive_pooling_over_non_overlapping_windows() {
        let dev = Cpu::seed_from_u64(33);
        let x: Tensor<Rank4<2, 3, 4, 6>, f32, Cpu> = dev.sample_normal();
        let xs = x.as_vec();
        for pool in [Pool::Max, Pool::Avg] {
            let y = pool2d::<Const<2>, 3, 2, 2, 4, 6, 2, 3, Cpu, NoneTape>(x.clone(), pool);
            assert_eq!(y.shape().concrete(), [2, 3, 2, 3]);
            assert_close(
                &y.as_vec(),
                &naive_pool(&xs, (2, 3, 4, 6), 2, pool),
                &format!("{pool:?}"),
            );
        }
    }

    #[test]
    fn flatten_orders_features_channel_then_row_then_column_like_torch_flatten_1() {
        let dev = Cpu::seed_from_u64(34);
        let x: Tensor<Rank4<2, 3, 4, 5>, f32, Cpu> = dev.sample_normal();
        let xs = x.as_vec();
        let y = flatten::<Const<2>, 3, 4, 5, 60, Cpu, NoneTape>(x).as_vec();
        let mut expected = Vec::new();
        for b in 0..2 {
            for c in 0..3 {
                for h in 0..4 {
                    for w in 0..5 {
                        expected.push(xs[((b * 3 + c) * 4 + h) * 5 + w] as f64);
                    }
                }
            }
        }
        assert_close(&y, &expected, "flatten");
    }
}
