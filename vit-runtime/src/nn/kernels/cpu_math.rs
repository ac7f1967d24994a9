//! Scalar maths written so that the loops calling it vectorise: no branches, no calls
//! into libm, several running sums instead of one. The workspace compiles for the CPU it
//! builds on (`.cargo/config.toml`), so these loops get its widest vectors.
//!
//! libm's `expf` and `erff` are calls per element: `expf` was an eighth of a ViT
//! inference pass (softmax), `erff` a tenth of a training step (GELU).

/// Elements handed to one rayon task of an element-wise pass: small enough to split a
/// batch over 2+ cores, large enough that scheduling costs nothing.
pub(super) const CHUNK: usize = 16 * 1024;

/// `erf` as a rational function of `x` (Eigen's `generic_fast_erf_float`; at most 4.2e-7
/// from the exact value): no branches or calls, so the GELU loops vectorise once it is
/// inlined into them. `libm::erff` made GELU a tenth of a ViT training step.
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
    const NUMERATOR: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ];
    const DENOMINATOR: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329e-3,
        -1.426_474e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = NUMERATOR.iter().fold(0.0, |acc, &c| acc * x2 + c);
    let q = DENOMINATOR.iter().fold(0.0, |acc, &c| acc * x2 + c);
    x * p / q
}

/// `e^x` as Cephes' `expf` computes it, `2^n · p(r)` with `n = round(x / ln 2)` and a
/// degree-6 polynomial on `|r| <= ln 2 / 2`: within 2 ulp of the exact value (tested)
/// from `ln(f32::MIN_POSITIVE)` (-87.34; 0 below) to 88.37 (`2^127`; infinite above, where
/// the exact value reaches `f32::MAX` at 88.72), NaN for NaN. Softmax and the GELU slope
/// only take it of numbers <= 0.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ];
    // Adding 1.5 * 2^23 rounds to the nearest integer n and leaves it in the low bits of
    // the mantissa, whence it shifts into the exponent field: no calls (`f32::round` is
    // one on plain x86-64) and no float-to-int cast (Rust's saturating `as` is scalar).
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.336_55, 88.376_26);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let p = P.iter().fold(0.0, |acc, &c| acc * r + c);
    let two_to_n = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    let value = (p * r * r + r + 1.0) * two_to_n;
    let value = if x > 88.376_26 { f32::INFINITY } else { value };
    if x < -87.336_55 {
        0.0
    } else {
        value
    }
}

/// `acc += x`, element by element.
#[inline(always)]
pub(super) fn add_to(acc: &mut [f32], x: &[f32]) {
    acc.iter_mut().zip(x).for_each(|(a, x)| *a += x);
}

/// Lanes of the running sums below.
const LANES: usize = 8;

/// `Σ f(x)` over [`LANES`] running sums: one sum is a chain of dependent additions that
/// neither vectorises nor pipelines.
#[inline(always)]
pub(super) fn sum_map(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|&x| f(x)).sum::<f32>()
}

/// `Σ xs`.
#[inline(always)]
pub(super) fn sum(xs: &[f32]) -> f32 {
    sum_map(xs, |x| x)
}

/// `Σ a_i b_i`.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of unequal lengths");
    let mut lanes = [0.0f32; LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// The larger of `a` and `b`, NaN if either is (`f32::max` drops NaNs).
#[inline(always)]
fn max_or_nan(a: f32, b: f32) -> f32 {
    if (b > a) | b.is_nan() {
        b
    } else {
        a
    }
}

/// The largest of `xs` (`-inf` if empty), NaN if one is NaN.
#[inline(always)]
pub(super) fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = max_or_nan(*lane, x);
        }
    }
    lanes
        .iter()
        .chain(chunks.remainder())
        .fold(f32::NEG_INFINITY, |a, &b| max_or_nan(a, b))
}

/// A deterministic stream of keep/drop decisions: element `j` of chunk `c` of a dropout
/// is kept when a hash of `(seed, c, j)` falls below `keep`, so the mask does not depend
/// on the number of threads and the backward pass can regenerate it instead of storing it.
/// A hash of the index rather than a sequential generator: no element waits for the one
/// before, so the loop vectorises (a `SmallRng` stream was a tenth of a ViT training step).
pub fn keep_mask(seed: u64, chunk: u64, keep: f32, out: &mut [f32]) {
    let key = splitmix64(seed ^ splitmix64(chunk));
    let (k0, k1) = (key as u32, (key >> 32) as u32);
    // `bits < keep * 2^32`.
    let threshold = (f64::from(keep) * 4_294_967_296.0).min(f64::from(u32::MAX)) as u32;
    let scale = 1.0 / keep;
    for (j, m) in out.iter_mut().enumerate() {
        let bits = mix32(mix32(j as u32 ^ k0) ^ k1);
        *m = if bits < threshold { scale } else { 0.0 };
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit key from a seed.
fn splitmix64(x: u64) -> u64 {
    let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Chris Wellons' `lowbias32` integer hash (32-bit multiplies: one vector lane each).
#[inline(always)]
fn mix32(x: u32) -> u32 {
    let x = (x ^ (x >> 16)).wrapping_mul(0x7FEB_352D);
    let x = (x ^ (x >> 15)).wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_stays_within_2_ulp_of_the_exact_value_and_saturates() {
        let mut worst = 0.0f64;
        for i in -873_300..=883_700 {
            let x = i as f32 * 1e-4;
            let exact = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - exact) / exact).abs());
        }
        // 2 ulp of f32 is 2^-22 relative.
        assert!(
            worst < 2.0 * f32::EPSILON as f64,
            "max relative error {worst}"
        );
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn lane_sums_match_plain_sums_at_every_length() {
        for n in 0..40 {
            let xs: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let ys: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = xs.iter().sum();
            assert!((sum(&xs) - plain).abs() < 1e-5, "sum, n = {n}");
            let plain_dot: f32 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
            assert!((dot(&xs, &ys) - plain_dot).abs() < 1e-5, "dot, n = {n}");
            let plain_max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max(&xs), plain_max, "max, n = {n}");
        }
        assert!(max(&[1.0, f32::NAN, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]).is_nan());
        assert!(max(&[1.0, f32::NAN]).is_nan());
    }
}
