//! The columns of an attention grid, as typed on the command line, resolved against a
//! model's block and head counts only when its maps are known.
use super::rollout::{self, Dims, Fusion, Head, Rollout, RolloutError};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// Blocks a rollout chains: `0..3` (end excluded, as in Rust), `4..` (to the last), `2`
/// (one block), `all` or `..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpan {
    pub start: usize,
    /// `None`: up to and including the last block.
    pub end: Option<usize>,
}

impl BlockSpan {
    pub const ALL: BlockSpan = BlockSpan {
        start: 0,
        end: None,
    };

    /// The blocks of a model with `blocks` blocks; an error if they are not all in it.
    pub fn resolve(self, blocks: usize) -> Result<Range<usize>, RolloutError> {
        let range = self.start..self.end.unwrap_or(blocks);
        rollout::check_blocks(&range, blocks)?;
        Ok(range)
    }
}

impl FromStr for BlockSpan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let number = |part: &str| {
            part.trim().parse::<usize>().map_err(|_| {
                format!("block range `{s}`: `{part}` is not a block number (use e.g. 0..3, 4.., 2 or all)")
            })
        };
        let s = s.trim();
        if s == "all" || s == ".." {
            return Ok(BlockSpan::ALL);
        }
        let Some((start, end)) = s.split_once("..") else {
            let block = number(s)?;
            return Ok(BlockSpan {
                start: block,
                end: Some(block + 1),
            });
        };
        let start = if start.is_empty() { 0 } else { number(start)? };
        let end = match end.strip_prefix('=') {
            Some(last) => Some(number(last)? + 1),
            None if end.is_empty() => None,
            None => Some(number(end)?),
        };
        Ok(BlockSpan { start, end })
    }
}

/// A block given by number, or the last one of whatever model it is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockRef {
    Index(usize),
    Last,
}

impl BlockRef {
    fn resolve(self, blocks: usize) -> usize {
        match self {
            BlockRef::Index(b) => b,
            BlockRef::Last => blocks.saturating_sub(1),
        }
    }
}

/// `BLOCK:HEAD`, the raw attention of one block: `5:0`, `last:2`, `last:mean`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSpec {
    pub block: BlockRef,
    pub head: Head,
}

impl FromStr for RawSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!("raw map `{s}`: use BLOCK:HEAD, BLOCK a number or `last`, HEAD a number or mean, min, max (e.g. 5:0, last:mean)")
        };
        let (block, head) = s.trim().split_once(':').ok_or_else(usage)?;
        let block = match block {
            "last" => BlockRef::Last,
            b => BlockRef::Index(b.parse().map_err(|_| usage())?),
        };
        let head = match head.parse::<usize>() {
            Ok(h) => Head::Index(h),
            Err(_) => Head::Fused(head.parse().map_err(|_| usage())?),
        };
        Ok(RawSpec { block, head })
    }
}

/// One column of the grid: a rollout setting, or one block's raw attention.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Rollout {
        fusion: Fusion,
        discard: f64,
        blocks: BlockSpan,
    },
    Raw(RawSpec),
}

impl View {
    /// Every combination of the rollout options (fusion varies fastest), then the raw maps.
    pub fn columns(
        fusions: &[Fusion],
        discards: &[f64],
        blocks: &[BlockSpan],
        raws: &[RawSpec],
    ) -> Vec<View> {
        let mut views = Vec::new();
        for &blocks in blocks {
            for &discard in discards {
                for &fusion in fusions {
                    views.push(View::Rollout {
                        fusion,
                        discard,
                        blocks,
                    });
                }
            }
        }
        views.extend(raws.iter().copied().map(View::Raw));
        views
    }

    /// An error if this view does not fit a model of `dims` (checked before any drawing).
    pub fn check(&self, dims: Dims) -> Result<(), RolloutError> {
        match self {
            View::Rollout {
                discard, blocks, ..
            } => {
                rollout::check_discard(*discard)?;
                blocks.resolve(dims.blocks).map(drop)
            }
            View::Raw(raw) => {
                let block = raw.block.resolve(dims.blocks);
                if block >= dims.blocks {
                    return Err(RolloutError::BlockOutOfRange {
                        block,
                        blocks: dims.blocks,
                    });
                }
                match raw.head {
                    Head::Index(head) if head >= dims.heads => Err(RolloutError::HeadOutOfRange {
                        head,
                        heads: dims.heads,
                    }),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The `tokens x tokens` matrix this view shows for one image's maps.
    pub fn matrix(&self, maps: &[f32], dims: Dims) -> Result<Vec<f32>, RolloutError> {
        match self {
            View::Rollout {
                fusion,
                discard,
                blocks,
            } => {
                let settings = Rollout {
                    fusion: *fusion,
                    discard: *discard,
                    blocks: blocks.resolve(dims.blocks)?,
                };
                rollout::rollout(maps, dims, &settings)
            }
            View::Raw(raw) => rollout::raw(maps, dims, raw.block.resolve(dims.blocks), raw.head),
        }
    }

    /// A two-line column header for a model with `blocks` blocks.
    pub fn header(&self, blocks: usize) -> [String; 2] {
        let heads = |head: Head| match head {
            Head::Index(h) => format!("head {h}"),
            Head::Fused(f) => format!("{f} of heads"),
        };
        match self {
            View::Rollout {
                fusion,
                discard,
                blocks: span,
            } => {
                let range = match span.resolve(blocks) {
                    Ok(r) if r == (0..blocks) => format!("all {blocks} blocks"),
                    Ok(r) if r.len() == 1 => format!("block {}", r.start),
                    Ok(r) => format!("blocks {}..{}", r.start, r.end),
                    Err(_) => "?".into(),
                };
                [
                    format!("rollout, {fusion} of heads"),
                    format!("discard {discard}, {range}"),
                ]
            }
            View::Raw(raw) => [
                format!("raw block {}", raw.block.resolve(blocks)),
                heads(raw.head),
            ],
        }
    }
}

impl fmt::Display for BlockSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "{}..{end}", self.start),
            None => write!(f, "{}..", self.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIMS: Dims = Dims {
        blocks: 6,
        heads: 4,
        tokens: 50,
    };

    #[test]
    fn block_spans_parse_like_rust_ranges() {
        let span = |s: &str| s.parse::<BlockSpan>().unwrap().resolve(6).unwrap();
        assert_eq!(span("0..3"), 0..3);
        assert_eq!(span("4.."), 4..6);
        assert_eq!(span("..2"), 0..2);
        assert_eq!(span("1..=2"), 1..3);
        assert_eq!(span("5"), 5..6);
        assert_eq!(span("all"), 0..6);
        assert!("a..3".parse::<BlockSpan>().is_err());
        assert!("-1".parse::<BlockSpan>().is_err());
    }

    #[test]
    fn block_spans_outside_the_model_are_errors() {
        let err = "4..7".parse::<BlockSpan>().unwrap().resolve(6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "blocks 4..7 are out of range: the model has blocks 0..6"
        );
        assert!("3..3".parse::<BlockSpan>().unwrap().resolve(6).is_err());
        assert!("6..".parse::<BlockSpan>().unwrap().resolve(6).is_err());
    }

    #[test]
    fn raw_specs_name_a_block_and_a_head_or_a_fusion() {
        let raw = |s: &str| s.parse::<RawSpec>();
        assert_eq!(
            raw("5:0"),
            Ok(RawSpec {
                block: BlockRef::Index(5),
                head: Head::Index(0)
            })
        );
        assert_eq!(
            raw("last:max"),
            Ok(RawSpec {
                block: BlockRef::Last,
                head: Head::Fused(Fusion::Max)
            })
        );
        assert!(raw("5").is_err());
        assert!(raw("x:0").is_err());
        assert!(raw("1:median").is_err());
    }

    #[test]
    fn views_out_of_the_models_range_fail_their_check() {
        let raw = |s: &str| View::Raw(s.parse().unwrap());
        assert!(raw("5:3").check(DIMS).is_ok());
        assert_eq!(
            raw("5:4").check(DIMS).unwrap_err().to_string(),
            "head 4 is out of range: the model has heads 0..4"
        );
        assert!(raw("6:0").check(DIMS).is_err());
        let rollout = |discard, blocks: &str| View::Rollout {
            fusion: Fusion::Mean,
            discard,
            blocks: blocks.parse().unwrap(),
        };
        assert!(rollout(0.9, "0..6").check(DIMS).is_ok());
        assert!(rollout(1.0, "0..6").check(DIMS).is_err());
        assert!(rollout(0.9, "0..9").check(DIMS).is_err());
    }

    #[test]
    fn columns_combine_rollout_options_then_add_raw_maps_with_readable_headers() {
        let views = View::columns(
            &[Fusion::Mean, Fusion::Max],
            &[0.9],
            &[BlockSpan::ALL, "4..".parse().unwrap()],
            &["last:0".parse().unwrap()],
        );
        let headers: Vec<[String; 2]> = views.iter().map(|v| v.header(6)).collect();
        assert_eq!(headers.len(), 5);
        assert_eq!(
            headers[0],
            [
                "rollout, mean of heads".to_string(),
                "discard 0.9, all 6 blocks".into()
            ]
        );
        assert_eq!(headers[3][1], "discard 0.9, blocks 4..6");
        assert_eq!(
            headers[4],
            ["raw block 5".to_string(), "head 0".to_string()]
        );
    }
}
