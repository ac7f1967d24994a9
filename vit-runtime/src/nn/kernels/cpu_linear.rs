//! `x Wᵀ + b` on the CPU as one op: three calls to `gemm` and a column sum.
//!
//! Composed from dfdx's ops, a linear layer zero-fills its output, multiplies, then adds
//! the bias in a second, single-threaded pass over a broadcast (strided) view, and
//! backward reduces that broadcast the same way. Here the output starts as the bias rows
//! and the product accumulates onto it; backward accumulates straight into the gradient
//! buffers and sums the bias gradient on every thread.
use super::cpu::read;
use dfdx::prelude::*;
use gemm::Parallelism;
use rayon::prelude::*;

/// A matrix stored in a slice: element `(r, c)` at `r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    fn row_major(data: &'a [f32], cols: usize) -> Self {
        Matrix {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Matrix {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// Whether every element of a `rows x cols` matrix lies inside the slice.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst += a · b` for a row-major `m x n` `dst`, `a` of `m x k` and `b` of `k x n`,
/// on every rayon thread.
fn add_product(dst: &mut [f32], (m, n, k): (usize, usize, usize), a: Matrix, b: Matrix) {
    assert_eq!(dst.len(), m * n, "destination size");
    assert!(a.holds(m, k) && b.holds(k, n), "operand sizes");
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: the three matrices lie inside their slices (checked above), `dst` is
    // borrowed mutably so it overlaps neither operand, and gemm reads and writes only
    // the elements the sizes and strides describe.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}

/// `acc += x`, element by element.
fn add_to(acc: &mut [f32], x: &[f32]) {
    acc.iter_mut().zip(x).for_each(|(a, x)| *a += x);
}

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
    add_product(
        &mut output,
        (rows, outputs, inputs),
        Matrix::row_major(&input, inputs),
        Matrix::transposed(&w, inputs),
    );
    let out = x
        .device()
        .tensor_from_vec(output, (x.shape().0, weight.shape().0));

    if T::OWNS_TAPE {
        let (x_ghost, w_ghost, b_ghost, out_ghost) =
            (x.ghost(), weight.ghost(), bias.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            let gy = grads.get_or_alloc_mut(&out_ghost)?.to_vec();
            add_product(
                grads.get_or_alloc_mut(&x_ghost)?,
                (rows, inputs, outputs),
                Matrix::row_major(&gy, outputs),
                Matrix::row_major(&w, inputs),
            );
            add_product(
                grads.get_or_alloc_mut(&w_ghost)?,
                (outputs, inputs, rows),
                Matrix::transposed(&gy, outputs),
                Matrix::row_major(&input, inputs),
            );
            let column_sums = gy
                .par_chunks(ROWS_PER_TASK * outputs)
                .map(|chunk| {
                    let mut sums = vec![0.0f32; outputs];
                    chunk.chunks(outputs).for_each(|row| add_to(&mut sums, row));
                    sums
                })
                .reduce(
                    || vec![0.0f32; outputs],
                    |mut a, b| {
                        add_to(&mut a, &b);
                        a
                    },
                );
            add_to(grads.get_or_alloc_mut(&b_ghost)?, &column_sums);
            Ok(())
        });
    }
    out.put_tape(tape)
}
