//! The fused ops built from dfdx's own ops: what non-CPU devices run, and the reference
//! the CPU kernels are tested against.
use super::base::{
    read, AttentionMaps, BatchStatistics, Channels, Epilogue, Images, Maps, Mode, Window,
};
use dfdx::prelude::*;

/// The exact GELU `x * Phi(x)` with a correct gradient, from dfdx ops
/// (the fused [`Kernels::gelu`] is checked against it).
///
/// dfdx 0.13's `accurate_gelu` computes the right values but its derivative
/// (`accurate_gelu/cpu_kernel.rs`) gives `Phi(x) + sqrt(2) x phi(x)` instead of
/// `Phi(x) + x phi(x)`. We keep its forward and add `(sqrt(2) - 1) (phi(x) - phi(x))`
/// with the second `phi` detached: exactly zero in value, `-(sqrt(2) - 1) x phi(x)` in
/// gradient, which cancels the error. Pinned by a finite-difference test.
pub fn gelu<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    let phi = (x.with_empty_tape().square() * -0.5).exp()
        * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
    // `* 1.0` gives the detached copy its own id, so no gradient is routed back to `phi`.
    let detached = phi.retaped::<NoneTape>() * 1.0;
    x.accurate_gelu() + (phi - detached) * (std::f32::consts::SQRT_2 - 1.0)
}

pub fn linear<R: Dim, I: Dim, O: Dim, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(R, I), f32, D, T>,
    weight: Tensor<(O, I), f32, D, T>,
    bias: &Tensor<(O,), f32, D>,
) -> Tensor<(R, O), f32, D, T> {
    let y = x.matmul(weight.permute());
    let shape = *y.shape();
    y + bias.retaped::<T>().broadcast_like(&shape)
}

/// See [`super::Kernels::conv2d`]: im2col rows (below) times the weight reordered to
/// their `(ky, kx, c)` order, plus the bias, moved channels first, then the epilogue.
pub fn conv2d<O: Dim, D: Device<f32>, T: Tape<f32, D>>(
    x: Maps<D, T>,
    weight: Tensor<(O, usize), f32, D, T>,
    bias: &Tensor<(O,), f32, D>,
    window: Window,
    epilogue: Epilogue,
) -> Tensor<(usize, O, usize), f32, D, T> {
    let (batch, c, _, _) = *x.shape();
    let (o, taps) = (weight.shape().0, window.k * window.k);
    let pixels = window.out.0 * window.out.1;
    let weight = weight
        .reshape_like(&(o, c, taps))
        .permute::<_, Axes3<0, 2, 1>>()
        .reshape_like(&(o, taps * c));
    let y = linear(unfold(x, window), weight, bias)
        .reshape_like(&(batch, pixels, o))
        .permute::<_, Axes3<0, 2, 1>>();
    // A contiguous copy: callers reshape the result as channels-first maps.
    let y = y.reshape_like(&(batch, o, pixels));
    match epilogue {
        Epilogue::Identity => y,
        Epilogue::Relu => y.relu(),
    }
}

pub fn layer_norm<B: Dim, S: Dim, const M: usize, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<(B, S, Const<M>), f32, D, T>,
    weight: &Tensor<Rank1<M>, f32, D>,
    bias: &Tensor<Rank1<M>, f32, D>,
    eps: f32,
) -> Tensor<(B, S, Const<M>), f32, D, T> {
    let shape = *x.shape();
    let w = weight.retaped::<T>().broadcast_like(&shape);
    let b = bias.retaped::<T>().broadcast_like(&shape);
    x.normalize::<Axis<2>>(eps) * w + b
}

/// See [`super::Kernels::batch_norm`]; dfdx's own `BatchNorm2D` computes the same way.
pub fn batch_norm<
    B: Dim,
    const C: usize,
    const H: usize,
    const W: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    x: Images<B, C, H, W, D, T>,
    weight: &Channels<C, D>,
    bias: &Channels<C, D>,
    running: Option<(&Channels<C, D>, &Channels<C, D>)>,
    eps: f32,
) -> (Images<B, C, H, W, D, T>, Option<BatchStatistics>) {
    let shape = *x.shape();
    let (centered, scale, stats) = match running {
        None => {
            let mean = x.retaped::<T>().mean::<Rank1<C>, Axes3<0, 2, 3>>();
            let batch_mean = read(&mean);
            let centered = x - mean.broadcast_like(&shape);
            let var = centered
                .retaped::<T>()
                .square()
                .mean::<Rank1<C>, Axes3<0, 2, 3>>();
            let stats = BatchStatistics {
                mean: batch_mean,
                var: read(&var),
                count: shape.0.size() * H * W,
            };
            let scale = weight.retaped::<T>() / (var + eps).sqrt();
            (centered, scale, Some(stats))
        }
        Some((mean, var)) => {
            let std = (var.clone() + eps).sqrt();
            let centered = x - mean.clone().broadcast_like(&shape);
            (centered, weight.retaped::<T>() / std, None)
        }
    };
    let y = centered * scale.broadcast_like(&shape) + bias.retaped::<T>().broadcast_like(&shape);
    (y, stats)
}

/// See [`super::Kernels::attention`].
pub fn attention<
    B: Dim,
    const S: usize,
    const H: usize,
    const DH: usize,
    const DIM: usize,
    const QKV: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    qkv: Tensor<(B, Const<S>, Const<QKV>), f32, D, T>,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let b = qkv.shape().0;
    let qkv = qkv
        .reshape_like(&(b, Const::<S>, Const::<3>, Const::<H>, Const::<DH>))
        .permute::<_, Axes5<2, 0, 3, 1, 4>>();
    attend_stacked(qkv, attention_dropout, mode, want_maps)
}

/// See [`super::Kernels::attention_per_head`].
pub fn attention_per_head<
    B: Dim,
    const S: usize,
    const H: usize,
    const DH: usize,
    const DIM: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    qkv: Tensor<(Const<3>, Const<H>, usize, Const<DH>), f32, D, T>,
    batch: B,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let qkv = qkv
        .reshape_like(&(Const::<3>, Const::<H>, batch, Const::<S>, Const::<DH>))
        .permute::<_, Axes5<0, 2, 1, 3, 4>>();
    attend_stacked(qkv, attention_dropout, mode, want_maps)
}

/// [`attend`] on q, k, v stacked as `(3, B, H, S, DH)`, heads merged to `(B, S, DIM)`.
fn attend_stacked<
    B: Dim,
    const S: usize,
    const H: usize,
    const DH: usize,
    const DIM: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    qkv: Tensor<(Const<3>, B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<S>, Const<DIM>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let batch = qkv.shape().1;
    let dev = qkv.device().clone();
    let q = qkv.with_empty_tape().select(dev.tensor(0usize));
    let k = qkv.with_empty_tape().select(dev.tensor(1usize));
    let v = qkv.select(dev.tensor(2usize));
    let (heads, maps) = attend(q, k, v, attention_dropout, mode, want_maps);
    let merged =
        heads
            .permute::<_, Axes4<0, 2, 1, 3>>()
            .reshape_like(&(batch, Const::<S>, Const::<DIM>));
    (merged, maps)
}

/// `softmax(q kᵀ / sqrt(DH)) v` per head on `(B, H, S, DH)` inputs, plus the weights
/// before attention dropout when `want_maps`.
pub fn attend<
    B: Dim,
    const H: usize,
    const S: usize,
    const DH: usize,
    D: Device<f32>,
    T: Tape<f32, D>,
>(
    q: Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    k: Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    v: Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    attention_dropout: f32,
    mode: Mode,
    want_maps: bool,
) -> (
    Tensor<(B, Const<H>, Const<S>, Const<DH>), f32, D, T>,
    Option<AttentionMaps<B, H, S, D>>,
) {
    let scale = 1.0 / (DH as f32).sqrt();
    let weights = (q * scale)
        .matmul(k.permute::<_, Axes4<0, 1, 3, 2>>())
        .softmax::<Axis<3>>();
    let maps = want_maps.then(|| weights.retaped::<NoneTape>());
    let weights = if mode == Mode::Train && attention_dropout > 0.0 {
        weights.dropout(attention_dropout)
    } else {
        weights
    };
    (weights.matmul(v), maps)
}

/// im2col: `(B, C, H, W) -> (B * HO * WO, K * K * C)`, each row one window with its
/// columns in `(ky, kx, c)` order: the `K*K` strided views stacked, `(K*K, B, C, HO, WO)`,
/// reordered to `(B, HO, WO, K*K, C)`.
pub fn unfold<D: Device<f32>, T: Tape<f32, D>>(
    x: Maps<D, T>,
    w: Window,
) -> Tensor<(usize, usize), f32, D, T> {
    let (b, c, _, _) = *x.shape();
    let (ho, wo) = w.out;
    windows(x, w.k, w.stride, w.padding, w.out)
        .stack()
        .permute::<_, Axes5<1, 3, 4, 0, 2>>()
        .reshape_like(&(b * ho * wo, w.k * w.k * c))
}

/// See [`super::Kernels::max_pool`].
pub fn max_pool<D: Device<f32>, T: Tape<f32, D>>(x: Maps<D, T>, w: Window) -> Maps<D, T> {
    windows(x, w.k, w.stride, 0, w.out)
        .stack()
        .max::<_, Axis<0>>()
}

/// Gives `x` a tensor identity of its own before it is sliced.
///
/// dfdx 0.13's `slice` backward *assigns* its gradient into the source's gradient instead
/// of adding to it (`tensor_ops/slice/cpu_kernel.rs`), so two slices of one tensor
/// overwrite each other's gradients. Slicing `x * 1.0` instead gives every slice its own
/// source, whose backward adds correctly.
pub fn own_source<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
) -> Tensor<S, f32, D, T> {
    x * 1.0
}

/// Zero-pads `x` by `(top, bottom, left, right)` rows/columns, by concatenation (so it is
/// differentiable and runs on every device).
fn pad<D: Device<f32>, T: Tape<f32, D>>(
    x: Maps<D, T>,
    (top, bottom, left, right): (usize, usize, usize, usize),
) -> Maps<D, T> {
    let dev = x.device().clone();
    let zeros = |shape: (usize, usize, usize, usize)| dev.zeros_like(&shape).retaped::<T>();
    let mut x = x;
    let (b, c, _, w) = *x.shape();
    if top > 0 {
        x = (zeros((b, c, top, w)), x).concat_along(Axis::<2>);
    }
    if bottom > 0 {
        x = (x, zeros((b, c, bottom, w))).concat_along(Axis::<2>);
    }
    let h = x.shape().2;
    if left > 0 {
        x = (zeros((b, c, h, left)), x).concat_along(Axis::<3>);
    }
    if right > 0 {
        x = (x, zeros((b, c, h, right))).concat_along(Axis::<3>);
    }
    x
}

/// The `K*K` views a `K x K` window with `stride` and zero `padding` visits, in (row, column)
/// order: view `(ky, kx)` is `padded[.., .., ky + stride*i, kx + stride*j]` for `i < HO, j < WO`.
pub fn windows<D: Device<f32>, T: Tape<f32, D>>(
    x: Maps<D, T>,
    k: usize,
    stride: usize,
    padding: usize,
    (ho, wo): (usize, usize),
) -> Vec<Maps<D, T>> {
    let (_, _, h, w) = *x.shape();
    // Strided views are cut as `stride*HO` rows then subsampled, so the last window may
    // need a few zero rows beyond PyTorch's padding; they are never selected.
    let need = |size: usize, out: usize| (k - 1 + stride * out).saturating_sub(size + 2 * padding);
    let x = pad(
        x,
        (
            padding,
            padding + need(h, ho),
            padding,
            padding + need(w, wo),
        ),
    );
    let (b, c, _, _) = *x.shape();
    let view = |x: Maps<D, T>, i: usize| {
        let (ky, kx) = (i / k, i % k);
        let cut = own_source(x).slice((.., .., ky..ky + stride * ho, kx..kx + stride * wo));
        if stride == 1 {
            return cut;
        }
        cut.reshape_like(&(b, c, ho, stride, wo, stride))
            .slice((.., .., .., 0..1, .., 0..1))
            .reshape_like(&(b, c, ho, wo))
    };
    // Every view but the last gets an empty tape; the last takes `x`'s, and the tapes
    // merge again where the views are stacked.
    let mut views: Vec<_> = (0..k * k - 1)
        .map(|i| view(x.with_empty_tape(), i))
        .collect();
    views.push(view(x, k * k - 1));
    views
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_gradient_is_phi_plus_x_times_density() {
        let dev = Cpu::default();
        let xs = [-3.0f32, -1.5, -0.4, 0.3, 1.0, 2.5];
        let x: Tensor<Rank1<6>, f32, _> = dev.tensor(xs);
        let y = gelu(x.leaky_trace());
        let values = y.as_vec();
        let grads = y.sum().backward();
        for ((&x, &gx), &y) in xs.iter().zip(&grads.get(&x).as_vec()).zip(&values) {
            // Phi(x) = gelu(x) / x; phi(x) = exp(-x^2/2) / sqrt(2 pi).
            let (x, y) = (x as f64, y as f64);
            let expected = y / x + x * (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (gx as f64 - expected).abs() < 1e-5,
                "x {x}: grad {gx}, expected {expected}"
            );
        }
    }

    #[test]
    fn gelu_values_are_dfdx_exact_gelu() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<4>, f32, _> = dev.tensor([-2.0, -0.1, 0.7, 3.0]);
        assert_eq!(gelu(x.clone()).as_vec(), x.accurate_gelu().as_vec());
    }

    #[test]
    fn overlapping_slices_of_own_sources_add_their_gradients() {
        let dev = Cpu::default();
        let x: Tensor<Rank1<3>, f32, _> = dev.tensor([1.0, 2.0, 3.0]);
        let t = x.leaky_trace();
        let a = own_source(t.with_empty_tape()).slice((0..2,));
        let b = own_source(t).slice((1..3,));
        let grads = (a + b).sum().backward();
        assert_eq!(grads.get(&x).as_vec(), vec![1.0, 2.0, 1.0]);
    }
}
