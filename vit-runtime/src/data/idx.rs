//! Reader for the IDX format of the MNIST family, raw or gzip-compressed.
//!
//! The header is validated before a single payload byte is allocated: its dimensions must
//! account for exactly the bytes the file holds (raw), or fit what the compressed size can
//! possibly decompress to (gzip). A hostile header claiming 4e9 images therefore costs a
//! few bytes of reading, not gigabytes of memory. The whole decoded content (header
//! included) is kept so that its SHA-256 can be compared with the official one, whatever
//! the file's compression.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::error::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const DTYPE_U8: u8 = 0x08;
/// Deflate's best case is about 1032:1 (a run of one byte); no valid stream of `n`
/// compressed bytes decodes to more than `n * 1032` bytes.
const MAX_DEFLATE_RATIO: u64 = 1032;
/// Pre-allocation cap for gzip payloads: beyond it the buffer grows with the bytes that
/// really arrive, so memory follows the data, not the header's promise.
const GZIP_PREALLOC_CAP: usize = 64 << 20;

/// What an IDX file holds; fixes its magic number and rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxKind {
    /// `0x00000803`: `count x rows x cols` unsigned bytes.
    Images,
    /// `0x00000801`: `count` unsigned bytes.
    Labels,
}

impl IdxKind {
    pub const fn magic(self) -> u32 {
        match self {
            IdxKind::Images => 0x0000_0803,
            IdxKind::Labels => 0x0000_0801,
        }
    }

    pub const fn rank(self) -> u8 {
        match self {
            IdxKind::Images => 3,
            IdxKind::Labels => 1,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            IdxKind::Images => "images",
            IdxKind::Labels => "labels",
        }
    }
}

/// A structurally valid IDX file: header and length agree.
#[derive(Debug, Clone)]
pub struct IdxFile {
    path: PathBuf,
    kind: IdxKind,
    dims: Vec<usize>,
    gzipped: bool,
    /// The decoded file, header included.
    content: Vec<u8>,
    header_len: usize,
}

impl IdxFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> IdxKind {
        self.kind
    }

    /// Dimensions from the header: `[count, rows, cols]` or `[count]`.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of items (first dimension).
    pub fn count(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }

    /// Whether the file on disk was gzip-compressed.
    pub fn gzipped(&self) -> bool {
        self.gzipped
    }

    /// Payload bytes (after the header).
    pub fn data(&self) -> &[u8] {
        &self.content[self.header_len..]
    }

    /// Lower-case hex SHA-256 of the decoded content, header included: the same for the
    /// raw file and its `.gz`, which is what the official checksums are taken over.
    pub fn sha256_hex(&self) -> String {
        Sha256::digest(&self.content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The payload, without copying it.
    pub fn into_data(mut self) -> Vec<u8> {
        self.content.drain(..self.header_len);
        self.content
    }
}

/// Reads and structurally validates an IDX file, raw or gzip (detected by its magic bytes,
/// not its name).
pub fn read_file(path: &Path, kind: IdxKind) -> Result<IdxFile, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let stored_len = file.metadata().map_err(io_err)?.len();
    read_stream(io::BufReader::new(file), stored_len, path, kind)
}

/// Same as [`read_file`] on bytes already in memory; `origin` names them in errors.
pub fn decode(bytes: &[u8], origin: &Path, kind: IdxKind) -> Result<IdxFile, DataError> {
    read_stream(bytes, bytes.len() as u64, origin, kind)
}

fn read_stream<R: Read>(
    mut reader: R,
    stored_len: u64,
    path: &Path,
    kind: IdxKind,
) -> Result<IdxFile, DataError> {
    let mut prefix = [0u8; 2];
    let n = read_up_to(&mut reader, &mut prefix).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let stream = (&prefix[..n]).chain(reader);
    if prefix[..n] == GZIP_MAGIC {
        let max = stored_len
            .saturating_mul(MAX_DEFLATE_RATIO)
            .saturating_add(1024);
        let bound = Bound::AtMost {
            compressed: stored_len,
            max,
        };
        read_idx(MultiGzDecoder::new(stream), bound, path, kind)
    } else {
        read_idx(stream, Bound::Exactly(stored_len), path, kind)
    }
}

/// What the file's size tells about the decoded length.
#[derive(Clone, Copy)]
enum Bound {
    Exactly(u64),
    AtMost { compressed: u64, max: u64 },
}

fn read_idx<R: Read>(
    mut r: R,
    bound: Bound,
    path: &Path,
    kind: IdxKind,
) -> Result<IdxFile, DataError> {
    let gzipped = matches!(bound, Bound::AtMost { .. });
    let path_buf = || path.to_path_buf();
    let read_err = |source| {
        if gzipped {
            DataError::Gzip {
                path: path_buf(),
                source,
            }
        } else {
            DataError::Io {
                path: path_buf(),
                source,
            }
        }
    };
    let header_len = 4 + 4 * usize::from(kind.rank());
    let mut header = [0u8; 16];
    let got = read_up_to(&mut r, &mut header[..header_len]).map_err(read_err)?;
    if got < 4 {
        return Err(truncated(path, "no complete magic number", 4, got as u64));
    }
    check_magic(path, kind, [header[0], header[1], header[2], header[3]])?;
    if got < header_len {
        return Err(truncated(
            path,
            "incomplete header",
            header_len as u128,
            got as u64,
        ));
    }
    let dims: Vec<u64> = header[4..header_len]
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let dims_text = dims_text(kind, &dims);
    // u32 dimensions, rank <= 3: the product fits u128 without overflow.
    let expected = header_len as u128 + dims.iter().map(|&d| u128::from(d)).product::<u128>();
    match bound {
        Bound::Exactly(len) if expected > u128::from(len) => {
            return Err(DataError::Truncated {
                path: path_buf(),
                dims: dims_text,
                expected,
                found: len,
            });
        }
        Bound::Exactly(len) if expected < u128::from(len) => {
            return Err(DataError::TrailingData {
                path: path_buf(),
                dims: dims_text,
                expected: expected as u64,
                found: len,
            });
        }
        Bound::AtMost { compressed, max } if expected > u128::from(max) => {
            return Err(DataError::ImpossibleSize {
                path: path_buf(),
                dims: dims_text,
                expected,
                compressed,
                max,
            });
        }
        _ => {}
    }
    // Bounded by the file size (or its decompressed maximum) above, so this fits.
    let expected = u64::try_from(expected).map_err(|_| DataError::ImpossibleSize {
        path: path_buf(),
        dims: dims_text.clone(),
        expected,
        compressed: 0,
        max: u64::MAX,
    })?;
    let expected_usize = usize::try_from(expected).unwrap_or(usize::MAX);
    let mut content = Vec::new();
    let prealloc = if gzipped {
        expected_usize.min(GZIP_PREALLOC_CAP)
    } else {
        expected_usize
    };
    content
        .try_reserve_exact(prealloc)
        .map_err(|e| read_err(io::Error::new(io::ErrorKind::OutOfMemory, e.to_string())))?;
    content.extend_from_slice(&header[..header_len]);
    // One byte more than promised: reaching it means trailing data. Reading to EOF
    // also makes the gzip decoder check the stream's CRC and length trailer.
    let payload = expected - header_len as u64;
    (&mut r)
        .take(payload + 1)
        .read_to_end(&mut content)
        .map_err(read_err)?;
    let found = content.len() as u64;
    if found < expected {
        return Err(DataError::Truncated {
            path: path_buf(),
            dims: dims_text,
            expected: u128::from(expected),
            found,
        });
    }
    if found > expected {
        return Err(DataError::TrailingData {
            path: path_buf(),
            dims: dims_text,
            expected,
            found,
        });
    }
    Ok(IdxFile {
        path: path_buf(),
        kind,
        dims: dims.iter().map(|&d| d as usize).collect(),
        gzipped,
        content,
        header_len,
    })
}

/// Tells a wrong dtype or rank apart from a file that is not IDX at all.
fn check_magic(path: &Path, kind: IdxKind, bytes: [u8; 4]) -> Result<(), DataError> {
    let found = u32::from_be_bytes(bytes);
    if found == kind.magic() {
        return Ok(());
    }
    let path = path.to_path_buf();
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::Magic {
            path,
            kind: kind.name(),
            found,
            expected: kind.magic(),
        });
    }
    if bytes[2] != DTYPE_U8 {
        return Err(DataError::Dtype {
            path,
            found: bytes[2],
        });
    }
    Err(DataError::Rank {
        path,
        kind: kind.name(),
        found: bytes[3],
        expected: kind.rank(),
    })
}

fn truncated(path: &Path, what: &str, expected: u128, found: u64) -> DataError {
    DataError::Truncated {
        path: path.to_path_buf(),
        dims: what.to_string(),
        expected,
        found,
    }
}

fn dims_text(kind: IdxKind, dims: &[u64]) -> String {
    let shape: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("{} {}", shape.join(" x "), kind.name())
}

/// Like `read_exact`, but a short read is a count, not an error.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
