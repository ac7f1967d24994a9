//! Safe matrix products on strided slices, through the `gemm` crate (it picks AVX2/FMA or
//! AVX-512 kernels at run time; dfdx's own gemm 0.15 has no AVX-512 ones on stable Rust).
use gemm::Parallelism;

/// A matrix inside a slice: element `(r, c)` at `r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// Rows of `row_stride` elements, one element apart in a row.
    pub fn rows(data: &'a [f32], row_stride: usize) -> Self {
        Matrix {
            data,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose of [`Matrix::rows`]`(data, row_stride)`.
    pub fn transposed(data: &'a [f32], row_stride: usize) -> Self {
        Matrix {
            data,
            row_stride: 1,
            col_stride: row_stride,
        }
    }
}

/// Whether every element of a `rows x cols` matrix with these strides lies in `len`.
fn fits(
    len: usize,
    (rows, cols): (usize, usize),
    (row_stride, col_stride): (usize, usize),
) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * row_stride + (cols - 1) * col_stride < len
}

/// How a product is written into its destination.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Write {
    /// `dst = scale · a b`
    Overwrite(f32),
    /// `dst += scale · a b`
    Accumulate(f32),
}

/// `a · b` into the `m x n` matrix of `dst` whose rows are `dst_row_stride` apart, with
/// `a` of `m x k` and `b` of `k x n`. `threads`: split over rayon's threads, or run on
/// the calling one (for products inside a task that is already one of many).
pub(super) fn product(
    dst: &mut [f32],
    dst_row_stride: usize,
    (m, n, k): (usize, usize, usize),
    a: Matrix,
    b: Matrix,
    write: Write,
    threads: bool,
) {
    assert!(
        fits(dst.len(), (m, n), (dst_row_stride, 1)),
        "destination size"
    );
    assert!(
        fits(a.data.len(), (m, k), (a.row_stride, a.col_stride))
            && fits(b.data.len(), (k, n), (b.row_stride, b.col_stride)),
        "operand sizes"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (read_dst, scale) = match write {
        Write::Overwrite(scale) => (false, scale),
        Write::Accumulate(scale) => (true, scale),
    };
    if k == 0 {
        if !read_dst {
            for row in dst.chunks_mut(dst_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    let parallelism = if threads {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
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
            dst_row_stride as isize,
            read_dst,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}
