//! From a patch-grid map to something the size of the image, for display.

/// Rescales `map` to `[0, 1]` (min -> 0, max -> 1), so that every column of a grid uses the
/// whole colour scale; a constant map becomes all zeros. Exported maps keep raw values.
pub fn normalise_unit(map: &mut [f32]) {
    let (lo, hi) = map
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    for v in map.iter_mut() {
        *v = if span > 0.0 { (*v - lo) / span } else { 0.0 };
    }
}

/// Bilinear resize of a `from.0 x from.1` row-major map to `to.0 x to.1`, with half-pixel
/// centres and clamped edges (`cv2.resize`, `F.interpolate(align_corners=False)`), so a
/// patch's value sits on the centre of its patch.
pub fn upsample_bilinear(map: &[f32], from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    let (h, w) = from;
    let (out_h, out_w) = to;
    if h == 0 || w == 0 || map.len() != h * w {
        return vec![0.0; out_h * out_w];
    }
    // Source coordinate of an output pixel: its lower neighbour, the next one, the weight.
    let axis = |out: usize, len: usize, out_len: usize| {
        let src =
            ((out as f32 + 0.5) * len as f32 / out_len as f32 - 0.5).clamp(0.0, (len - 1) as f32);
        let low = src.floor() as usize;
        (low, (low + 1).min(len - 1), src - low as f32)
    };
    let mut out = Vec::with_capacity(out_h * out_w);
    for y in 0..out_h {
        let (y0, y1, fy) = axis(y, h, out_h);
        for x in 0..out_w {
            let (x0, x1, fx) = axis(x, w, out_w);
            let top = map[y0 * w + x0] * (1.0 - fx) + map[y0 * w + x1] * fx;
            let bottom = map[y1 * w + x0] * (1.0 - fx) + map[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_2x2_to_4x4_matches_pytorch_interpolate_without_aligned_corners() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]),
        //     size=(4, 4), mode="bilinear", align_corners=False)
        #[rustfmt::skip]
        let expected = [
            0.0, 0.25, 0.75, 1.0,
            0.5, 0.75, 1.25, 1.5,
            1.5, 1.75, 2.25, 2.5,
            2.0, 2.25, 2.75, 3.0,
        ];
        assert_eq!(
            upsample_bilinear(&[0.0, 1.0, 2.0, 3.0], (2, 2), (4, 4)),
            expected
        );
    }

    #[test]
    fn upsampling_a_constant_map_keeps_it_constant_and_same_size_is_identity() {
        assert!(upsample_bilinear(&[0.3; 49], (7, 7), (28, 28))
            .iter()
            .all(|&v| (v - 0.3).abs() < 1e-6));
        let map: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(upsample_bilinear(&map, (3, 4), (3, 4)), map);
    }

    #[test]
    fn normalising_spans_zero_to_one_and_a_flat_map_is_zero() {
        let mut map = vec![2.0, 4.0, 3.0];
        normalise_unit(&mut map);
        assert_eq!(map, vec![0.0, 1.0, 0.5]);
        let mut flat = vec![0.7; 4];
        normalise_unit(&mut flat);
        assert_eq!(flat, vec![0.0; 4]);
    }
}
