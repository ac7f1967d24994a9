//! Fixed sinusoidal positional embeddings (Vaswani et al., 2017).
use dfdx::prelude::*;

/// `table[pos][i] = sin(pos / 10000^(i/d))` for even `i`, `cos(pos / 10000^((i-1)/d))` for odd `i`:
/// the course's `get_positional_embeddings`, row-major `(seq_len, d)`.
pub fn sinusoidal_table(seq_len: usize, d: usize) -> Vec<f32> {
    let mut table = Vec::with_capacity(seq_len * d);
    for pos in 0..seq_len {
        for i in 0..d {
            let even = i - i % 2;
            let angle = pos as f64 / 10000f64.powf(even as f64 / d as f64);
            table.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    table
}

/// Fills a `(1, SEQ, DIM)` tensor with [`sinusoidal_table`] (a dfdx `TensorOptions` reset fn).
pub fn fill_sinusoidal<S: Shape, E, D, const SEQ: usize, const DIM: usize>(
    t: &mut Tensor<S, E, D>,
) -> Result<(), D::Err>
where
    E: Dtype + num_traits::Float,
    D: Device<E>,
{
    assert_eq!(
        t.shape().num_elements(),
        SEQ * DIM,
        "positional table shape"
    );
    let values: Vec<E> = sinusoidal_table(SEQ, DIM)
        .into_iter()
        .map(|x| E::from(x).expect("f32 converts to every float dtype"))
        .collect();
    t.copy_from(&values);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoidal_table_is_sin_on_even_and_cos_on_odd_features() {
        let (seq, d) = (50, 8);
        let table = sinusoidal_table(seq, d);
        assert_eq!(table.len(), seq * d);
        for pos in 0..seq {
            for i in 0..d {
                let expected = if i % 2 == 0 {
                    (pos as f64 / 10000f64.powf(i as f64 / d as f64)).sin()
                } else {
                    (pos as f64 / 10000f64.powf((i - 1) as f64 / d as f64)).cos()
                };
                let got = table[pos * d + i];
                assert!(
                    (got as f64 - expected).abs() <= 1e-5,
                    "table[{pos}][{i}] = {got}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn sinusoidal_table_spot_values_match_hand_computation() {
        let table = sinusoidal_table(50, 8);
        // pos 0: sin(0) = 0 on even features, cos(0) = 1 on odd ones.
        assert_eq!(&table[..8], &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        // pos 1, i 0: 1 / 10000^0 = 1 -> sin(1); i 1 -> cos(1).
        assert!(
            (table[8] - 0.841_470_98).abs() <= 1e-6,
            "sin(1), got {}",
            table[8]
        );
        assert!(
            (table[9] - 0.540_302_3).abs() <= 1e-6,
            "cos(1), got {}",
            table[9]
        );
        // pos 1, i 2: 1 / 10000^(2/8) = 0.1 -> sin(0.1).
        assert!(
            (table[10] - 0.099_833_42).abs() <= 1e-6,
            "sin(0.1), got {}",
            table[10]
        );
    }

    #[test]
    fn fill_sinusoidal_writes_the_table_row_major_into_a_positions_tensor() {
        let dev = Cpu::default();
        let mut t: Tensor<Rank3<1, 50, 8>, f32, Cpu> = dev.zeros();
        fill_sinusoidal::<_, f32, Cpu, 50, 8>(&mut t).unwrap();
        assert_eq!(t.as_vec(), sinusoidal_table(50, 8));
    }
}
