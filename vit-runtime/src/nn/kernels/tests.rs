//! The CPU kernels against their composite twins: same values, same gradients.
use super::{composite, Epilogue, Kernels, Mode};
use dfdx::prelude::*;

const TOL: f32 = 1e-5;

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tol,
        "{what}: max relative difference {worst} > {tol}"
    );
}

/// Gradients of named inputs, as `run` below returns them.
type NamedGrads = Vec<(&'static str, Vec<f32>)>;

/// `run(fused)` runs an op fused (`true`) or composite and returns its output and the
/// gradients of `sum(output * r)` for its inputs: the outputs must agree within `TOL`, the
/// gradients within 1e-4.
fn assert_fused_matches_composite(run: impl Fn(bool) -> (Vec<f32>, NamedGrads)) {
    let (v_fused, g_fused) = run(true);
    let (v_ref, g_ref) = run(false);
    assert_close("values", &v_fused, &v_ref, TOL);
    assert_eq!(g_fused.len(), g_ref.len(), "gradients");
    for ((name, fused), (_, reference)) in g_fused.iter().zip(&g_ref) {
        assert_close(name, fused, reference, 1e-4);
    }
}

/// The values of `y` and the gradients of `sum(y * r)` for a layer's input `x`, weight and
/// bias, as [`assert_fused_matches_composite`] compares them.
fn values_and_grads<Y: Shape, X: Shape, W: Shape, B: Shape>(
    y: Tensor<Y, f32, Cpu, OwnedTape<f32, Cpu>>,
    r: &Tensor<Y, f32, Cpu>,
    x: &Tensor<X, f32, Cpu>,
    w: &Tensor<W, f32, Cpu>,
    b: &Tensor<B, f32, Cpu>,
) -> (Vec<f32>, NamedGrads) {
    let values = y.as_vec();
    let g = (y * r.clone()).sum().backward();
    let grads = vec![
        ("x", g.get(x).as_vec()),
        ("weight", g.get(w).as_vec()),
        ("bias", g.get(b).as_vec()),
    ];
    (values, grads)
}

#[test]
fn fused_relu_matches_dfdx_values_and_gradients_with_exact_zeros() {
    let dev = Cpu::seed_from_u64(2);
    // Whole numbers from -3 to 3: a seventh of the inputs are exactly 0 (gradient 0).
    let x: Tensor<(usize, Const<41>), f32, _> = dev.tensor_from_vec(
        (0..37 * 41).map(|i| (i % 7) as f32 - 3.0).collect(),
        (37, Const::<41>),
    );
    let r: Tensor<(usize, Const<41>), f32, _> = dev.sample_normal_like(&(37, Const::<41>));
    let fused = <Cpu as Kernels>::relu(x.leaky_trace());
    let reference = x.leaky_trace().relu();
    assert_eq!(fused.as_vec(), reference.as_vec(), "values");
    let g_fused = (fused * r.clone()).sum().backward();
    let g_reference = (reference * r).sum().backward();
    assert_eq!(
        g_fused.get(&x).as_vec(),
        g_reference.get(&x).as_vec(),
        "grad"
    );
}

#[test]
fn fused_gelu_matches_composite_values_and_gradients() {
    let dev = Cpu::seed_from_u64(1);
    let x: Tensor<Rank2<37, 41>, f32, _> = dev.sample_normal::<Rank2<37, 41>>() * 2.0;
    let r: Tensor<Rank2<37, 41>, f32, _> = dev.sample_normal();
    let fused = <Cpu as Kernels>::gelu(x.leaky_trace());
    let reference = composite::gelu(x.leaky_trace());
    assert_close("values", &fused.as_vec(), &reference.as_vec(), TOL);
    let g_fused = (fused * r.clone()).sum().backward();
    let g_reference = (reference * r).sum().backward();
    assert_close(
        "grad",
        &g_fused.get(&x).as_vec(),
        &g_reference.get(&x).as_vec(),
        TOL,
    );
}

#[test]
fn fused_layer_norm_matches_composite_values_and_gradients() {
    let dev = Cpu::seed_from_u64(2);
    let x: Tensor<Rank3<3, 7, 24>, f32, _> = dev.sample_normal::<Rank3<3, 7, 24>>() * 3.0 + 1.0;
    let w: Tensor<Rank1<24>, f32, _> = dev.sample_normal();
    let b: Tensor<Rank1<24>, f32, _> = dev.sample_normal();
    let r: Tensor<Rank3<3, 7, 24>, f32, _> = dev.sample_normal();
    assert_fused_matches_composite(|fused| {
        let xt = x.leaky_trace();
        let y = if fused {
            <Cpu as Kernels>::layer_norm(xt, &w, &b, 1e-5)
        } else {
            composite::layer_norm(xt, &w, &b, 1e-5)
        };
        values_and_grads(y, &r, &x, &w, &b)
    });
}

#[test]
fn fused_batch_norm_matches_composite_with_batch_and_running_statistics() {
    let dev = Cpu::seed_from_u64(6);
    let x: Tensor<Rank4<5, 3, 4, 6>, f32, _> = dev.sample_normal::<Rank4<5, 3, 4, 6>>() * 2.0 + 0.7;
    let w: Tensor<Rank1<3>, f32, _> = dev.sample_normal();
    let b: Tensor<Rank1<3>, f32, _> = dev.sample_normal();
    let r: Tensor<Rank4<5, 3, 4, 6>, f32, _> = dev.sample_normal();
    let running_mean: Tensor<Rank1<3>, f32, _> = dev.sample_normal();
    let running_var: Tensor<Rank1<3>, f32, _> = dev.sample_uniform::<Rank1<3>>() + 0.5;
    for running in [None, Some((&running_mean, &running_var))] {
        let stats = std::cell::RefCell::new(Vec::new());
        assert_fused_matches_composite(|fused| {
            let xt = x.leaky_trace();
            let (y, batch) = if fused {
                <Cpu as Kernels>::batch_norm(xt, &w, &b, running, 1e-3)
            } else {
                composite::batch_norm(xt, &w, &b, running, 1e-3)
            };
            stats.borrow_mut().push(batch);
            values_and_grads(y, &r, &x, &w, &b)
        });
        let stats = stats.into_inner();
        assert_eq!(stats[0].is_some(), running.is_none());
        if let (Some(fused), Some(reference)) = (&stats[0], &stats[1]) {
            assert_eq!(fused.count, 5 * 4 * 6);
            assert_close("mean", &fused.mean, &reference.mean, TOL);
            assert_close("var", &fused.var, &reference.var, TOL);
        }
    }
}

#[test]
fn fused_dropout_zeroes_about_p_scales_survivors_and_routes_gradients_through_the_mask() {
    let dev = Cpu::seed_from_u64(3);
    let x: Tensor<Rank1<100_000>, f32, _> = dev.ones() + 1.0;
    let y = <Cpu as Kernels>::dropout(x.leaky_trace(), 0.25);
    let values = y.as_vec();
    let dropped = values.iter().filter(|&&v| v == 0.0).count() as f64 / values.len() as f64;
    assert!((dropped - 0.25).abs() < 0.01, "dropped fraction {dropped}");
    assert!(values
        .iter()
        .all(|&v| v == 0.0 || (v - 2.0 / 0.75).abs() < 1e-6));
    let grads = y.sum().backward();
    for (g, v) in grads.get(&x).as_vec().iter().zip(&values) {
        assert_eq!(*g, v / 2.0, "gradient is the mask");
    }
    // The same device seed gives the same mask.
    let again =
        <Cpu as Kernels>::dropout(Cpu::seed_from_u64(3).ones::<Rank1<100_000>>() + 1.0, 0.25);
    assert_eq!(again.as_vec(), values);
}

#[test]
fn dropout_masks_are_independent_between_neighbours_chunks_and_seeds() {
    let mask = |seed, chunk| {
        let mut m = vec![0.0f32; 100_000];
        super::cpu_math::keep_mask(seed, chunk, 0.5, &mut m);
        m
    };
    // With keep = 1/2, two independent decisions agree half of the time.
    let agreement = |a: &[f32], b: &[f32]| {
        a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
    };
    let first = mask(7, 0);
    let kept = first.iter().filter(|&&m| m == 2.0).count() as f64 / first.len() as f64;
    assert!((kept - 0.5).abs() < 0.01, "kept fraction {kept}");
    for (what, other) in [
        ("next element", first[1..].to_vec()),
        ("next chunk", mask(7, 1)),
        ("next seed", mask(8, 0)),
    ] {
        let a = agreement(&first[..other.len()], &other);
        assert!((a - 0.5).abs() < 0.01, "{what}: agreement {a}");
    }
    assert_eq!(
        mask(7, 0),
        first,
        "the same seed and chunk give the same mask"
    );
}

const B: usize = 3;
const S: usize = 6;
const H: usize = 2;
const DH: usize = 4;
const DIM: usize = H * DH;
const QKV: usize = 3 * DIM;

type Maps = Option<Tensor<(usize, Const<H>, Const<S>, Const<S>), f32, Cpu>>;

/// Values, attention maps and `d(sum(out * r)) / d qkv` of one attention implementation.
fn run_attention<Qs: Shape>(
    qkv: &Tensor<Qs, f32, Cpu>,
    attention: impl Fn(
        Tensor<Qs, f32, Cpu, OwnedTape<f32, Cpu>>,
    ) -> (
        Tensor<(usize, Const<S>, Const<DIM>), f32, Cpu, OwnedTape<f32, Cpu>>,
        Maps,
    ),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let r: Tensor<(usize, Const<S>, Const<DIM>), f32, _> =
        Cpu::seed_from_u64(9).sample_normal_like(&(B, Const, Const));
    let (out, maps) = attention(qkv.leaky_trace());
    let values = out.as_vec();
    let grads = (out * r).sum().backward();
    (
        values,
        maps.expect("maps asked for").as_vec(),
        grads.get(qkv).as_vec(),
    )
}

#[test]
fn fused_attention_matches_composite_for_timm_qkv_layout() {
    let dev = Cpu::seed_from_u64(4);
    let qkv: Tensor<(usize, Const<S>, Const<QKV>), f32, _> =
        dev.sample_normal_like(&(B, Const, Const));
    let fused = run_attention(&qkv, |x| {
        <Cpu as Kernels>::attention::<usize, S, H, DH, DIM, QKV, _>(x, 0.0, Mode::Eval, true)
    });
    let reference = run_attention(&qkv, |x| {
        composite::attention::<usize, S, H, DH, DIM, QKV, Cpu, _>(x, 0.0, Mode::Eval, true)
    });
    assert_close("values", &fused.0, &reference.0, TOL);
    assert_close("maps", &fused.1, &reference.1, TOL);
    assert_close("grad", &fused.2, &reference.2, 1e-4);
}

#[test]
fn fused_attention_matches_composite_for_per_head_layout() {
    let dev = Cpu::seed_from_u64(5);
    let qkv: Tensor<(Const<3>, Const<H>, usize, Const<DH>), f32, _> =
        dev.sample_normal_like(&(Const, Const, B * S, Const));
    let fused = run_attention(&qkv, |x| {
        <Cpu as Kernels>::attention_per_head::<usize, S, H, DH, DIM, _>(x, B, 0.0, Mode::Eval, true)
    });
    let reference = run_attention(&qkv, |x| {
        composite::attention_per_head::<usize, S, H, DH, DIM, Cpu, _>(x, B, 0.0, Mode::Eval, true)
    });
    assert_close("values", &fused.0, &reference.0, TOL);
    assert_close("maps", &fused.1, &reference.1, TOL);
    assert_close("grad", &fused.2, &reference.2, 1e-4);
}

/// With attention dropout the masks of the two versions differ, so the fused op's
/// gradient is checked against central differences (a device seeded alike redraws the
/// same mask on every evaluation).
#[test]
fn fused_attention_with_dropout_has_finite_difference_gradients() {
    let qkv: Vec<f32> = Cpu::seed_from_u64(6)
        .sample_normal_like::<(usize, Const<S>, Const<QKV>)>(&(B, Const, Const))
        .as_vec();
    let r = Cpu::seed_from_u64(7)
        .sample_normal_like::<(usize, Const<S>, Const<DIM>)>(&(B, Const, Const))
        .as_vec();
    let loss = |values: &[f32]| -> (f64, Vec<f32>) {
        let dev = Cpu::seed_from_u64(8);
        let x = dev.tensor_from_vec(values.to_vec(), (B, Const::<S>, Const::<QKV>));
        let (out, _) = <Cpu as Kernels>::attention::<usize, S, H, DH, DIM, QKV, _>(
            x.leaky_trace(),
            0.3,
            Mode::Train,
            false,
        );
        let r = dev.tensor_from_vec(r.clone(), (B, Const::<S>, Const::<DIM>));
        let total = (out * r).sum();
        let value = total.as_vec()[0] as f64;
        (value, total.backward().get(&x).as_vec())
    };
    let (_, analytic) = loss(&qkv);
    let h = 1e-2f32;
    for index in (0..qkv.len()).step_by(7) {
        let mut plus = qkv.clone();
        plus[index] += h;
        let mut minus = qkv.clone();
        minus[index] -= h;
        let numeric = (loss(&plus).0 - loss(&minus).0) / (2.0 * h as f64);
        assert!(
            (numeric - analytic[index] as f64).abs() < 2e-3 * (1.0 + numeric.abs()),
            "qkv[{index}]: analytic {} vs numeric {numeric}",
            analytic[index]
        );
    }
}

/// A `k x k` window moved by `stride` over a zero border of `padding`, giving `out`.
fn square_window(k: usize, stride: usize, padding: usize, out: (usize, usize)) -> super::Window {
    super::Window {
        k,
        stride,
        padding,
        out,
    }
}

/// Values and input gradient (against weights `r`) of a conv-kernel implementation.
fn run_maps<O: Shape>(
    x: &Tensor<(usize, usize, usize, usize), f32, Cpu>,
    op: impl Fn(
        Tensor<(usize, usize, usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>,
    ) -> Tensor<O, f32, Cpu, OwnedTape<f32, Cpu>>,
) -> (Vec<f32>, Vec<f32>) {
    let y = op(x.leaky_trace());
    let r: Tensor<O, f32, Cpu> = Cpu::seed_from_u64(11).sample_normal_like(y.shape());
    let values = y.as_vec();
    let grads = (y * r).sum().backward();
    (values, grads.get(x).as_vec())
}

#[test]
fn fused_max_pool_matches_composite() {
    let dev = Cpu::seed_from_u64(12);
    let x = dev.sample_normal_like(&(2usize, 3usize, 7usize, 6usize));
    for window in [
        square_window(2, 2, 0, (3, 3)),
        square_window(3, 1, 0, (5, 4)),
        square_window(3, 2, 0, (3, 2)),
    ] {
        let fused = run_maps(&x, |x| <Cpu as Kernels>::max_pool(x, window));
        let reference = run_maps(&x, |x| composite::max_pool(x, window));
        assert_close(&format!("{window:?} values"), &fused.0, &reference.0, TOL);
        assert_close(&format!("{window:?} grad"), &fused.1, &reference.1, TOL);
    }
}

#[test]
fn fused_max_pool_gives_a_tied_window_gradient_to_its_first_maximum_as_pytorch() {
    // After a ReLU most windows are ties of zeros. dfdx's max (the composite) gives each
    // tied element the whole gradient; PyTorch gives it to the first, in row-major order.
    let (h, w) = (6, 6);
    let values: Vec<f32> = (0..h * w)
        .map(|i| [0.0, 0.0, 1.0, 0.0, 1.0][i % 5])
        .collect();
    let x = Cpu::default().tensor_from_vec(values.clone(), (1usize, 1usize, h, w));
    for window in [
        square_window(2, 2, 0, (3, 3)),
        square_window(3, 1, 0, (4, 4)),
    ] {
        let (_, grad) = run_maps(&x, |x| <Cpu as Kernels>::max_pool(x, window));
        let r: Tensor<(usize, usize, usize, usize), f32, Cpu> =
            Cpu::seed_from_u64(11).sample_normal_like(&(1, 1, window.out.0, window.out.1));
        let mut expected = vec![0.0f32; h * w];
        for (o, &g) in r.as_vec().iter().enumerate() {
            let (oy, ox) = (o / window.out.1, o % window.out.1);
            let taps = (0..window.k * window.k).map(|t| {
                (oy * window.stride + t / window.k) * w + ox * window.stride + t % window.k
            });
            // The first index holding the window's maximum.
            let first = taps.reduce(|a, b| if values[b] > values[a] { b } else { a });
            expected[first.unwrap()] += g;
        }
        assert_close(&format!("{window:?} grad"), &grad, &expected, TOL);
    }
}

#[test]
fn rational_erf_stays_within_5e_7_of_the_exact_value() {
    let worst = (-100_000..=100_000)
        .map(|i| i as f32 * 1e-4)
        .map(|x| (super::cpu_math::erf(x) as f64 - libm::erf(x as f64)).abs())
        .fold(0.0, f64::max);
    assert!(worst < 5e-7, "max |erf error| {worst}");
}

#[test]
fn fused_linear_matches_composite_values_and_gradients() {
    let dev = Cpu::seed_from_u64(6);
    // 300 rows: more than one task of the bias fill and the column sums.
    let x: Tensor<(usize, Const<24>), f32, _> = dev.sample_normal_like(&(300, Const::<24>));
    let w: Tensor<Rank2<40, 24>, f32, _> = dev.sample_normal();
    let b: Tensor<Rank1<40>, f32, _> = dev.sample_normal();
    let r: Tensor<(usize, Const<40>), f32, _> = dev.sample_normal_like(&(300, Const::<40>));
    assert_fused_matches_composite(|fused| {
        let (xt, wt) = (x.leaky_trace(), w.retaped::<OwnedTape<f32, Cpu>>());
        let y = if fused {
            <Cpu as Kernels>::linear(xt, wt, &b)
        } else {
            composite::linear(xt, wt, &b)
        };
        values_and_grads(y, &r, &x, &w, &b)
    });
}

#[test]
fn fused_conv2d_matches_composite_with_padding_stride_and_relu() {
    let dev = Cpu::seed_from_u64(7);
    // 3 images of 2 channels, 7x6; 5 output channels.
    let x = dev.sample_normal_like(&(3usize, 2usize, 7usize, 6usize));
    let b: Tensor<Rank1<5>, f32, _> = dev.sample_normal();
    for window in [
        square_window(3, 1, 1, (7, 6)),
        square_window(3, 2, 1, (4, 3)),
        square_window(2, 2, 0, (3, 3)),
        // A padding larger than the kernel reaches: whole rows and columns of zeros.
        square_window(2, 1, 2, (10, 9)),
    ] {
        let taps = 2 * window.k * window.k;
        let w: Tensor<(Const<5>, usize), f32, _> = dev.sample_normal_like(&(Const::<5>, taps));
        let pixels = window.out.0 * window.out.1;
        let r: Tensor<(usize, Const<5>, usize), f32, _> =
            dev.sample_normal_like(&(3, Const::<5>, pixels));
        for epilogue in [Epilogue::Identity, Epilogue::Relu] {
            assert_fused_matches_composite(|fused| {
                let (xt, wt) = (x.leaky_trace(), w.retaped::<OwnedTape<f32, Cpu>>());
                let y = if fused {
                    <Cpu as Kernels>::conv2d(xt, wt, &b, window, epilogue)
                } else {
                    composite::conv2d(xt, wt, &b, window, epilogue)
                };
                values_and_grads(y, &r, &x, &w, &b)
            });
        }
    }
}
