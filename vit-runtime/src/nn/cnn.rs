//! Conv and pooling layers with all sizes known at compile time.
//!
//! dfdx 0.13's conv and pool ops (module- and tensor-level) only exist behind its
//! `nightly` feature. So the conv here is built from stable ops that dfdx differentiates
//! and runs on every device: zero padding by concatenation, the `K*K` shifted windows
//! stacked into an im2col matrix, and one matmul. Pooling (window = stride) is a reshape
//! and a max/mean. vit-macros computes every output size and passes it in as a const
//! parameter; the `CHECK` consts prove the sizes consistent at compile time.
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


impl<const CI: usize, const CO: usize, const K: usize, const STRIDE: usize, const PAD: usize, const HI: usize, const WI: usize, const HO: usize, const WO: usize, E: Dtype, D: Storage<E>>
    Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, E, D>
{
    const CHECK: () = {
        assert!(K > 0 && STRIDE > 0, "kernel and stride must be positive");
        assert!(HI + 2 * PAD >= K && WI + 2 * PAD >= K, "kernel larger than padded input");
        assert!(HO == conv_out(HI, K, STRIDE, PAD) && WO == conv_out(WI, K, STRIDE, PAD), "wrong output size");
    };
}

impl<const CI: usize, const CO: usize, const K: usize, const STRIDE: usize, const PAD: usize, const HI: usize, const WI: usize, const HO: usize, const WO: usize, E, D>
    TensorCollection<E, D> for Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, E, D>
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
        fn init<S: Shape, E, D, const CI: usize, const K: usize>(t: &mut Tensor<S, E, D>) -> Result<(), D::Err>
        where
            E: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform,
            D: Device<E>,
        {
            let b = E::ONE / E::from_usize(CI * K * K).expect("fan-in fits the dtype").sqrt();
            t.try_fill_with_distr(rand_distr::Uniform::new(-b, b))
        }
        visitor.visit_fields(
            (
                Self::tensor("weight", |s| &s.weight, |s| &mut s.weight, TensorOptions::reset_with(init::<_, E, D, CI, K>)),
                Self::tensor("bias", |s| &s.bias, |s| &mut s.bias, TensorOptions::reset_with(init::<_, E, D, CI, K>)),
            ),
            |(weight, bias)| Conv2d { weight, bias },
        )
    }
}

impl<const CI: usize, const CO: usize, const K: usize, const STRIDE: usize, const PAD: usize, const HI: usize, const WI: usize, const HO: usize, const WO: usize, D: Device<f32>>
    Conv2d<CI, CO, K, STRIDE, PAD, HI, WI, HO, WO, f32, D>
{
    /// `(B, CI, HI, WI) -> (B, CO, HO, WO)`.
    pub fn forward<B: Dim, T: Tape<f32, D>>(
        &self,
        x: Tensor<(B, Const<CI>, Const<HI>, Const<WI>), f32, D, T>,
    ) -> Tensor<(B, Const<CO>, Const<HO>, Const<WO>), f32, D, T> {
        let () = Self::CHECK;
        let b = x.shape().0;
        let dev = x.device().clone();
        let x = x.reshape_like(&(b.size(), CI, HI, WI));
        let padded = if PAD == 0 {
            x
        } else {
            let rows = dev.zeros_like(&(b.size(), CI, PAD, WI)).retaped::<T>();
            let x = (rows.with_empty_tape(), x).concat_along(Axis::<2>);
            let x = (x, rows).concat_along(Axis::<2>);
            let cols = dev.zeros_like(&(b.size(), CI, HI + 2 * PAD, PAD)).retaped::<T>();
            let x = (cols.with_empty_tape(), x).concat_along(Axis::<3>);
            (x, cols).concat_along(Axis::<3>)
        };
        // im2col: (K*K, B, CI, HO, WO) -> (B*HO*WO, K*K*CI), window-major like the weight below.
        let windows: Vec<_> = (0..K * K)
            .map(|i| {
                let (ky, kx) = (i / K, i % K);
                padded
                    .with_empty_tape()
                    .slice((.., .., ky..ky + STRIDE * (HO - 1) + 1, kx..kx + STRIDE * (WO - 1) + 1))
            })
            .collect();
        drop(padded);
        let columns = windows
            .stack()
            .permute::<_, Axes5<1, 3, 4, 0, 2>>()
            .reshape_like(&(b.size() * HO * WO, K * K * CI));
        // PyTorch's (CO, CI, K, K) weight, reordered to (K*K*CI, CO).
        let weight = self
            .weight
            .retaped::<T>()
            .permute::<_, Axes4<0, 2, 3, 1>>()
            .reshape_like(&(Const::<CO>, K * K * CI))
            .permute::<_, Axes2<1, 0>>();
        let y = columns
            .matmul(weight)
            .reshape_like(&(b, Const::<HO>, Const::<WO>, Const::<CO>))
            .permute::<_, Axes4<0, 3, 1, 2>>();
        let shape = *y.shape();
        y + self.bias.retaped::<T>().broadcast_like::<_, Axes3<0, 2, 3>>(&shape)
    }
}

/// Max or average pooling with window = stride = `K`, `(B, C, HI, WI) -> (B, C, HI/K, WI/K)`.
pub fn pool2d<B: Dim, const C: usize, const K: usize, const HI: usize, const WI: usize, const HO: usize, const WO: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(B, Const<C>, Const<HI>, Const<WI>), f32, D, T>,
    pool: Pool,
) -> Tensor<(B, Const<C>, Const<HO>, Const<WO>), f32, D, T> {
    struct Check<const HI: usize, const WI: usize, const K: usize, const HO: usize, const WO: usize>;
    impl<const HI: usize, const WI: usize, const K: usize, const HO: usize, const WO: usize> Check<HI, WI, K, HO, WO> {
        const OK: () = assert!(
            K > 0 && HI % K == 0 && WI % K == 0 && HO == HI / K && WO == WI / K,
            "pool window must tile the input"
        );
    }
    let () = Check::<HI, WI, K, HO, WO>::OK;
    let b = x.shape().0;
    let windows = x.reshape_like(&(b, Const::<C>, Const::<HO>, Const::<K>, Const::<WO>, Const::<K>));
    match pool {
        Pool::Max => windows.max::<_, Axes2<3, 5>>(),
        Pool::Avg => windows.mean::<_, Axes2<3, 5>>(),
    }
}

/// `(B, C, H, W) -> (B, C*H*W)` in PyTorch's `flatten(1)` order.
pub fn flatten<B: Dim, const C: usize, const H: usize, const W: usize, const F: usize, D: Device<f32>, T: Tape<f32, D>>(
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
