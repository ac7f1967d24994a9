//! Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"),
//! as jacobgil's `vit-explain` computes it, on plain row-major slices.
//!
//! One image's maps are `(blocks, heads, tokens, tokens)`, each row a softmax. Per block:
//! 1. fuse the heads element-wise ([`Fusion`]: mean, min or max);
//! 2. zero the lowest `discard` fraction of the fused matrix ([`discard_lowest`]);
//! 3. add the identity for the residual path and re-normalise every row
//!    ([`add_identity_and_normalise`]): `A = (fused + I) / 2`, then `A[i, :] /= sum(A[i, :])`;
//! 4. chain the blocks in order: `joint = A_last @ ... @ A_first`.
//!
//! Row 0 of `joint` says how much the class token draws from each input token; its patch
//! columns, reshaped to the patch grid, are the map people look at ([`class_row`]).
//!
//! Where this differs from `vit-explain`: it divides `a / a.sum(dim=-1)`, which broadcasts
//! over columns, not rows; we divide rows, as the paper means (rows then stay stochastic,
//! so the joint matrix is stochastic too).
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// How the heads of one block become one matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fusion {
    Mean,
    Min,
    Max,
}

impl Fusion {
    pub const ALL: [Fusion; 3] = [Fusion::Mean, Fusion::Min, Fusion::Max];

    pub const fn name(self) -> &'static str {
        match self {
            Fusion::Mean => "mean",
            Fusion::Min => "min",
            Fusion::Max => "max",
        }
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fusion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fusion::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown head fusion `{s}`: use mean, min or max"))
    }
}

/// The heads a raw (not rolled out) map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Index(usize),
    Fused(Fusion),
}

/// Sizes of one image's attention maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub blocks: usize,
    pub heads: usize,
    pub tokens: usize,
}

impl Dims {
    /// Floats of one block (all heads).
    pub fn block_len(self) -> usize {
        self.heads * self.tokens * self.tokens
    }

    /// Floats of one image (all blocks).
    pub fn image_len(self) -> usize {
        self.blocks * self.block_len()
    }
}

/// A rollout setting: one column of the attention grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub fusion: Fusion,
    /// Fraction of the fused entries to zero per block, in `[0, 1)`.
    pub discard: f64,
    /// Blocks chained, first to last (0-based, end excluded).
    pub blocks: Range<usize>,
}

/// Settings that do not fit the maps they are applied to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RolloutError {
    #[error("blocks {start}..{end} are out of range: the model has blocks 0..{blocks}")]
    BlocksOutOfRange {
        start: usize,
        end: usize,
        blocks: usize,
    },
    #[error("block range {start}..{end} is empty: give start < end, e.g. 0..{blocks}")]
    EmptyBlocks {
        start: usize,
        end: usize,
        blocks: usize,
    },
    #[error("block {block} is out of range: the model has blocks 0..{blocks}")]
    BlockOutOfRange { block: usize, blocks: usize },
    #[error("head {head} is out of range: the model has heads 0..{heads}")]
    HeadOutOfRange { head: usize, heads: usize },
    #[error("discard ratio {0} is outside [0, 1)")]
    DiscardOutOfRange(f64),
    #[error("{found} attention values do not make {dims:?}")]
    Length { found: usize, dims: Dims },
    #[error("{prefix} prefix tokens and a {rows}x{cols} patch grid do not make {tokens} tokens")]
    Grid {
        prefix: usize,
        rows: usize,
        cols: usize,
        tokens: usize,
    },
}

/// An error unless `ratio` is in `[0, 1)` (1 would discard everything but the class entry).
pub fn check_discard(ratio: f64) -> Result<(), RolloutError> {
    if (0.0..1.0).contains(&ratio) {
        Ok(())
    } else {
        Err(RolloutError::DiscardOutOfRange(ratio))
    }
}

/// An error unless `blocks` is a non-empty range within `0..total`.
pub fn check_blocks(blocks: &Range<usize>, total: usize) -> Result<(), RolloutError> {
    let (start, end) = (blocks.start, blocks.end);
    if start >= end {
        Err(RolloutError::EmptyBlocks {
            start,
            end,
            blocks: total,
        })
    } else if end > total {
        Err(RolloutError::BlocksOutOfRange {
            start,
            end,
            blocks: total,
        })
    } else {
        Ok(())
    }
}

/// Fuses the `heads` matrices of one block (`heads x tokens x tokens`) element-wise.
pub fn fuse_heads(block: &[f32], heads: usize, fusion: Fusion) -> Vec<f32> {
    let n = block.len() / heads.max(1);
    let mut heads_of = block.chunks_exact(n);
    let Some(first) = heads_of.next() else {
        return Vec::new();
    };
    let mut fused = first.to_vec();
    for head in heads_of {
        for (acc, &v) in fused.iter_mut().zip(head) {
            *acc = match fusion {
                Fusion::Mean => *acc + v,
                Fusion::Min => acc.min(v),
                Fusion::Max => acc.max(v),
            };
        }
    }
    if fusion == Fusion::Mean {
        let scale = 1.0 / heads as f32;
        fused.iter_mut().for_each(|v| *v *= scale);
    }
    fused
}

/// Zeroes the lowest `floor(len * ratio)` entries of the flattened matrix, except entry 0
/// (the class token attending to itself).
///
/// As `vit-explain`: the lowest entries are chosen among all of them, and entry 0 is then
/// spared, so when it is among the lowest one entry fewer is zeroed. Ties go to the lower
/// index, so the result does not depend on the sort.
pub fn discard_lowest(matrix: &mut [f32], ratio: f64) {
    // The epsilon keeps e.g. 0.7 * 2500 (= 1749.9999...) at 1750.
    let count = ((matrix.len() as f64 * ratio) + 1e-9).floor() as usize;
    if count == 0 {
        return;
    }
    let mut order: Vec<usize> = (0..matrix.len()).collect();
    order.sort_by(|&a, &b| matrix[a].total_cmp(&matrix[b]).then(a.cmp(&b)));
    for &i in order.iter().take(count).filter(|&&i| i != 0) {
        matrix[i] = 0.0;
    }
}

/// `A = (A + I) / 2`, then every row divided by its sum: the residual connection carries
/// half of each token forward, and rows stay stochastic.
pub fn add_identity_and_normalise(matrix: &mut [f32], tokens: usize) {
    for (i, row) in matrix.chunks_exact_mut(tokens).enumerate() {
        row[i] += 1.0;
        // The diagonal makes every row sum to at least 1 (entries are non-negative).
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// `a @ b` for square `n x n` matrices.
fn matmul(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; n * n];
    for (a_row, out_row) in a.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        for (&a_ik, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (o, &b_kj) in out_row.iter_mut().zip(b_row) {
                *o += a_ik * b_kj;
            }
        }
    }
    out
}

/// The joint attention (`tokens x tokens`) of one image's maps (`blocks x heads x tokens x
/// tokens`) over `settings.blocks`.
pub fn rollout(maps: &[f32], dims: Dims, settings: &Rollout) -> Result<Vec<f32>, RolloutError> {
    check_len(maps, dims)?;
    check_discard(settings.discard)?;
    check_blocks(&settings.blocks, dims.blocks)?;
    let t = dims.tokens;
    let mut joint = identity(t);
    for block in settings.blocks.clone() {
        let start = block * dims.block_len();
        let mut a = fuse_heads(
            &maps[start..start + dims.block_len()],
            dims.heads,
            settings.fusion,
        );
        discard_lowest(&mut a, settings.discard);
        add_identity_and_normalise(&mut a, t);
        joint = matmul(&a, &joint, t);
    }
    Ok(joint)
}

/// One block's attention as the model computed it (no identity, no rollout): one head, or
/// all heads fused.
pub fn raw(maps: &[f32], dims: Dims, block: usize, head: Head) -> Result<Vec<f32>, RolloutError> {
    check_len(maps, dims)?;
    if block >= dims.blocks {
        return Err(RolloutError::BlockOutOfRange {
            block,
            blocks: dims.blocks,
        });
    }
    let start = block * dims.block_len();
    let block_maps = &maps[start..start + dims.block_len()];
    let n = dims.tokens * dims.tokens;
    match head {
        Head::Index(h) if h < dims.heads => Ok(block_maps[h * n..(h + 1) * n].to_vec()),
        Head::Index(h) => Err(RolloutError::HeadOutOfRange {
            head: h,
            heads: dims.heads,
        }),
        Head::Fused(fusion) => Ok(fuse_heads(block_maps, dims.heads, fusion)),
    }
}

/// Row 0 of a `tokens x tokens` matrix over the patch tokens (the columns after the
/// `prefix` class/distillation tokens): a `rows x cols` map, row-major.
pub fn class_row(
    matrix: &[f32],
    tokens: usize,
    prefix: usize,
    grid: (usize, usize),
) -> Result<Vec<f32>, RolloutError> {
    if prefix + grid.0 * grid.1 != tokens || matrix.len() != tokens * tokens {
        return Err(RolloutError::Grid {
            prefix,
            rows: grid.0,
            cols: grid.1,
            tokens,
        });
    }
    Ok(matrix[prefix..tokens].to_vec())
}

fn identity(n: usize) -> Vec<f32> {
    let mut m = vec![0.0; n * n];
    (0..n).for_each(|i| m[i * n + i] = 1.0);
    m
}

fn check_len(maps: &[f32], dims: Dims) -> Result<(), RolloutError> {
    if maps.len() == dims.image_len() {
        Ok(())
    } else {
        Err(RolloutError::Length {
            found: maps.len(),
            dims,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIMS: Dims = Dims {
        blocks: 2,
        heads: 2,
        tokens: 5,
    };

    /// 2 blocks x 2 heads x 5 tokens (class + a 2x2 grid), in sixteenths so that every
    /// mean, min and max is exact and the discard order has no rounding ties.
    #[rustfmt::skip]
    fn maps() -> Vec<f32> {
        let sixteenths: [[[u8; 5]; 5]; 4] = [
            [[6,4,2,2,2],[4,4,4,2,2],[2,2,8,2,2],[4,2,2,2,6],[3,3,4,3,3]], // block 0 head 0
            [[2,2,4,4,4],[8,2,2,2,2],[4,3,3,3,3],[2,8,2,2,2],[1,3,5,5,2]], // block 0 head 1
            [[2,8,2,2,2],[5,5,2,2,2],[3,3,4,3,3],[1,1,5,5,4],[6,2,2,2,4]], // block 1 head 0
            [[4,2,4,2,4],[2,2,2,2,8],[4,4,4,4,0],[3,3,3,3,4],[2,4,5,3,2]], // block 1 head 1
        ];
        sixteenths.iter().flatten().flatten().map(|&v| f32::from(v) / 16.0).collect()
    }

    fn assert_close(found: &[f32], expected: &[f64]) {
        assert_eq!(found.len(), expected.len());
        for (i, (&f, &e)) in found.iter().zip(expected).enumerate() {
            assert!(
                (f64::from(f) - e).abs() < 1e-6,
                "entry {i}: {f} != {e}\n{found:?}"
            );
        }
    }

    /// The class-token patch row of the rollout, computed independently with numpy:
    /// ```python
    /// def rollout(A, fusion, ratio, blocks):          # A: (2, 2, 5, 5) as in `maps()`
    ///     result = np.eye(5)
    ///     for b in blocks:
    ///         f = getattr(A[b], fusion)(0).copy(); flat = f.reshape(-1)
    ///         idx = np.argsort(flat, kind="stable")[:int(flat.size * ratio)]
    ///         flat[idx[idx != 0]] = 0
    ///         a = (f + np.eye(5)) / 2; a = a / a.sum(-1, keepdims=True)
    ///         result = a @ result
    ///     return result[0, 1:]
    /// ```
    fn expected(fusion: Fusion, discard: f64) -> [f64; 4] {
        match (fusion, discard) {
            (Fusion::Mean, 0.0) => [0.17431640625, 0.150390625, 0.11962890625, 0.134765625],
            (Fusion::Max, 0.5) => [
                0.17857142857142855,
                0.03571428571428571,
                0.09523809523809523,
                0.09523809523809523,
            ],
            (Fusion::Min, 0.2) => [
                0.021511667345000676,
                0.07695699362366029,
                0.07279371862705195,
                0.14115452448785784,
            ],
            _ => unreachable!("no reference for {fusion} {discard}"),
        }
    }

    #[test]
    fn rollout_of_two_blocks_equals_numpy_reference() {
        for (fusion, discard) in [(Fusion::Mean, 0.0), (Fusion::Max, 0.5), (Fusion::Min, 0.2)] {
            let settings = Rollout {
                fusion,
                discard,
                blocks: 0..2,
            };
            let joint = rollout(&maps(), DIMS, &settings).unwrap();
            let map = class_row(&joint, 5, 1, (2, 2)).unwrap();
            assert_close(&map, &expected(fusion, discard));
        }
    }

    #[test]
    fn rollout_of_one_block_with_mean_fusion_is_its_normalised_mean_by_hand() {
        // Block 1, mean of heads, row 0: (2+4, 8+2, 2+4, 2+2, 2+4) / 32 = (6, 10, 6, 4, 6) / 32.
        // Plus identity at [0, 0] -> (38, 10, 6, 4, 6) / 32, row sum 64 / 32 = 2, so the
        // patches get (10, 6, 4, 6) / 64.
        let settings = Rollout {
            fusion: Fusion::Mean,
            discard: 0.0,
            blocks: 1..2,
        };
        let joint = rollout(&maps(), DIMS, &settings).unwrap();
        let map = class_row(&joint, 5, 1, (2, 2)).unwrap();
        assert_close(&map, &[10.0 / 64.0, 6.0 / 64.0, 4.0 / 64.0, 6.0 / 64.0]);
    }

    #[test]
    fn joint_rows_stay_stochastic_for_every_setting() {
        for fusion in Fusion::ALL {
            for discard in [0.0, 0.3, 0.9, 0.99] {
                for blocks in [0..1, 1..2, 0..2] {
                    let settings = Rollout {
                        fusion,
                        discard,
                        blocks,
                    };
                    let joint = rollout(&maps(), DIMS, &settings).unwrap();
                    for (r, row) in joint.chunks(5).enumerate() {
                        let sum: f32 = row.iter().sum();
                        assert!(
                            (sum - 1.0).abs() < 1e-6,
                            "{settings:?} row {r} sums to {sum}"
                        );
                        assert!(row.iter().all(|&v| v >= 0.0), "{settings:?} row {r}");
                    }
                }
            }
        }
    }

    #[test]
    fn identity_and_normalise_makes_rows_sum_to_one_even_when_a_row_was_zeroed() {
        let mut m = vec![0.2, 0.6, 0.2, 0.0, 0.0, 0.0, 0.3, 0.3, 0.4];
        add_identity_and_normalise(&mut m, 3);
        assert_close(
            &m,
            &[
                0.6,
                0.3,
                0.1,
                0.0,
                1.0,
                0.0,
                0.3 / 2.0,
                0.3 / 2.0,
                1.4 / 2.0,
            ],
        );
    }

    #[test]
    fn discard_never_drops_the_class_token_entry_even_when_it_is_the_lowest() {
        // Entry 0 is the strict minimum; 0.5 of 9 entries = 4 lowest: 0 (spared), 1, 2, 3.
        let mut m = vec![0.01, 0.02, 0.03, 0.04, 0.5, 0.6, 0.7, 0.8, 0.9];
        discard_lowest(&mut m, 0.5);
        assert_eq!(m, vec![0.01, 0.0, 0.0, 0.0, 0.5, 0.6, 0.7, 0.8, 0.9]);
        // When entry 0 is not among the lowest, exactly floor(9 * 0.5) = 4 go.
        let mut m = vec![0.9, 0.02, 0.03, 0.04, 0.05, 0.6, 0.7, 0.8, 0.01];
        discard_lowest(&mut m, 0.5);
        assert_eq!(m, vec![0.9, 0.0, 0.0, 0.0, 0.05, 0.6, 0.7, 0.8, 0.0]);
    }

    #[test]
    fn discard_breaks_ties_by_position_and_keeps_the_largest_entries() {
        let mut m = vec![0.5, 0.1, 0.1, 0.1, 0.2];
        discard_lowest(&mut m, 0.4); // 2 of 5: the first two 0.1s
        assert_eq!(m, vec![0.5, 0.0, 0.0, 0.1, 0.2]);
        let mut all_but_one = vec![0.3; 10];
        discard_lowest(&mut all_but_one, 0.999);
        assert_eq!(all_but_one.iter().filter(|&&v| v > 0.0).count(), 2);
    }

    #[test]
    fn fusion_takes_mean_min_and_max_over_heads() {
        let block = [0.2, 0.8, 0.6, 0.4]; // 2 heads of 2 values
        assert_close(&fuse_heads(&block, 2, Fusion::Mean), &[0.4, 0.6]);
        assert_close(&fuse_heads(&block, 2, Fusion::Min), &[0.2, 0.4]);
        assert_close(&fuse_heads(&block, 2, Fusion::Max), &[0.6, 0.8]);
    }

    #[test]
    fn raw_is_one_head_or_the_fused_heads_of_one_block() {
        let head = raw(&maps(), DIMS, 1, Head::Index(0)).unwrap();
        assert_close(
            &class_row(&head, 5, 1, (2, 2)).unwrap(),
            &[0.5, 0.125, 0.125, 0.125],
        );
        let mean = raw(&maps(), DIMS, 1, Head::Fused(Fusion::Mean)).unwrap();
        assert_close(
            &class_row(&mean, 5, 1, (2, 2)).unwrap(),
            &[10.0 / 32.0, 6.0 / 32.0, 4.0 / 32.0, 6.0 / 32.0],
        );
    }

    #[test]
    fn out_of_range_settings_are_errors() {
        let with = |blocks, discard| Rollout {
            fusion: Fusion::Mean,
            discard,
            blocks,
        };
        let err = rollout(&maps(), DIMS, &with(0..3, 0.0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "blocks 0..3 are out of range: the model has blocks 0..2"
        );
        assert!(matches!(
            rollout(&maps(), DIMS, &with(1..1, 0.0)),
            Err(RolloutError::EmptyBlocks { .. })
        ));
        assert!(matches!(
            rollout(&maps(), DIMS, &with(0..2, 1.0)),
            Err(RolloutError::DiscardOutOfRange(_))
        ));
        assert!(matches!(
            rollout(&maps(), DIMS, &with(0..2, -0.1)),
            Err(RolloutError::DiscardOutOfRange(_))
        ));
        assert!(matches!(
            rollout(&maps(), DIMS, &with(0..2, f64::NAN)),
            Err(RolloutError::DiscardOutOfRange(_))
        ));
        assert!(matches!(
            raw(&maps(), DIMS, 0, Head::Index(2)),
            Err(RolloutError::HeadOutOfRange { head: 2, heads: 2 })
        ));
        assert!(matches!(
            raw(&maps(), DIMS, 2, Head::Index(0)),
            Err(RolloutError::BlockOutOfRange { .. })
        ));
        assert!(matches!(
            rollout(&maps()[1..], DIMS, &with(0..2, 0.0)),
            Err(RolloutError::Length { .. })
        ));
        assert!(matches!(
            class_row(&[0.0; 25], 5, 1, (2, 3)),
            Err(RolloutError::Grid { .. })
        ));
    }
}
