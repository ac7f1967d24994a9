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
    assert_eq!(t.shape().num_elements(), SEQ * DIM, "positional table shape");
    let values: Vec<E> = sinusoidal_table(SEQ, DIM)
        .into_iter()
        .map(|x| E::from(x).expect("f32 converts to every float dtype"))
        .collect();
    t.copy_from(&values);
    Ok(())
}
