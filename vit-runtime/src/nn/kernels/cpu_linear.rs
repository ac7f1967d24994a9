//! `x Wᵀ + b` on the CPU as one op: three calls to `gemm` and a column sum.
//!
//! Composed from dfdx's ops, a linear layer zero-fills its output, multiplies, then adds
//! the bias in a second, single-threaded pass over a broadcast (strided) view, and
//! backward reduces that broadcast the same way. Here the output starts as the bias rows
//! and the product accumulates onto it; backward accumulates straight into the gradient
//! buffers and sums the bias gradient on every thread, in an order that does not depend on
//! the number of threads.
use super::base::read;
use super::cpu_gemm::{product, Matrix, Write};
use super::cpu_math::add_to;
use dfdx::prelude::*;
use rayon::prelude::*;

/// Rows per rayon task when filling or summing `(rows, O)` buffers.
const ROWS_PER_TASK: usize = 256;

pub(super) fn linear<R: Dim, I: Dim, O: Dim, T: Tape<f32, Cpu>>(
    x: Tensor<(R, I), f32, Cpu, T>,
    weight: Tensor<(O, I), f32, Cpu, T>,
    bias: &Tensor<(O,), f32, Cpu>,
) -> Tensor<(R, O), f32, Cpu, T> {
    let (x, tape) = x.split_tape();
    let (weight, weight_tape) = weight.split_tape();
    let (bias, bias_tape) = bias.retaped::<T>().split_tape();
    let mut tape = tape.merge(weight_tape).merge(bias_tape);
    let (input, w, b) = (read(&x), read(&weight), read(&bias));
    let (rows, inputs) = (x.shape().0.size(), x.shape().1.size());
    let outputs = weight.shape().0.size();

    let mut output = vec![0.0f32; rows * outputs];
    output
        .par_chunks_mut(ROWS_PER_TASK * outputs)
        .for_each(|chunk| {
            chunk
                .chunks_mut(outputs)
                .for_each(|row| row.copy_from_slice(&b))
        });
    product(
        &mut output,
        outputs,
        (rows, outputs, inputs),
        Matrix::rows(&input, inputs),
        Matrix::transposed(&w, inputs),
        Write::Accumulate(1.0),
        true,
    );
    let out = x
        .device()
        .tensor_from_vec(output, (x.shape().0, weight.shape().0));

    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, out_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gy = std::mem::take(&mut **grads.get_or_alloc_mut(&out_ghost)?);
            product(
                grads.get_or_alloc_mut(&x_ghost)?,
                inputs,
                (rows, inputs, outputs),
                Matrix::rows(&gy, outputs),
                Matrix::rows(&w, inputs),
                Write::Accumulate(1.0),
                true,
            );
            product(
                grads.get_or_alloc_mut(&w_ghost)?,
                inputs,
                (outputs, inputs, rows),
                Matrix::transposed(&gy, outputs),
                Matrix::rows(&input, inputs),
                Write::Accumulate(1.0),
                true,
            );
            // Per fixed chunk of rows, then added in chunk order: the same sum for any
            // number of threads (a rayon `reduce` associates as its splits fall).
            let column_sums: Vec<Vec<f32>> = gy
                .par_chunks(ROWS_PER_TASK * outputs)
                .map(|chunk| {
                    let mut sums = vec![0.0f32; outputs];
                    chunk.chunks(outputs).for_each(|row| add_to(&mut sums, row));
                    sums
                })
                .collect();
            let gb = grads.get_or_alloc_mut(&b_ghost)?;
            column_sums.iter().for_each(|sums| add_to(gb, sums));
            **grads.get_or_alloc_mut(&out_ghost)? = gy;
            Ok(())
        });
    }
    out.put_tape(tape)
}
