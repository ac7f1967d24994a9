//! The IDX reader, the image decoder and the file lookup on damaged, hostile or wrong
//! input: every case is a clear error naming the file and the problem, never a panic,
//! never a huge allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use vit_runtime::data::idx::{self, IdxKind};
use vit_runtime::data::{read_image, DataError, DataSource, ImageShape, Split};
use vit_runtime::recipe::Dataset;

/// Records the largest allocation each thread asks for, so that "does not allocate
/// gigabytes" is measured, not assumed.
struct PeakAlloc;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Runs `f`, returning its result, the largest single allocation it made and its time.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    LARGEST.with(|l| l.set(0));
    let start = Instant::now();
    let out = f();
    (out, LARGEST.with(Cell::get), start.elapsed())
}

fn images_idx(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(pixels);
    b
}

fn labels_idx(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("in-memory write");
    enc.finish().expect("in-memory gzip")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// The error of reading `bytes` from a file called `name`, checked to name the file.
fn read_error(name: &str, bytes: &[u8], kind: IdxKind) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), name, bytes);
    let err = idx::read_file(&path, kind).expect_err("bad input must be an error");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    msg
}

#[test]
fn valid_raw_and_gzip_files_decode_to_the_same_content() {
    let raw = images_idx(2, 2, 2, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let a = idx::decode(&raw, Path::new("raw"), IdxKind::Images).expect("valid");
    let b = idx::decode(&gz(&raw), Path::new("gz"), IdxKind::Images).expect("valid");
    assert_eq!(a.dims(), [2, 2, 2]);
    assert_eq!(a.data(), b.data());
    assert_eq!(a.sha256_hex(), b.sha256_hex());
    assert!(!a.gzipped() && b.gzipped());
}

#[test]
fn truncated_images_file_is_an_error() {
    let mut bytes = images_idx(3, 2, 2, &[7; 12]);
    bytes.truncate(bytes.len() - 5);
    let msg = read_error("short-images", &bytes, IdxKind::Images);
    assert!(
        msg.contains("truncated") && msg.contains("3 x 2 x 2"),
        "{msg}"
    );
}

#[test]
fn truncated_header_is_an_error() {
    let msg = read_error("short-header", &[0, 0, 8, 3, 0, 0], IdxKind::Images);
    assert!(
        msg.contains("truncated") && msg.contains("incomplete header"),
        "{msg}"
    );
    let msg = read_error("empty", &[], IdxKind::Labels);
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn extra_bytes_after_the_data_are_an_error() {
    let mut bytes = labels_idx(&[1, 2, 3]);
    bytes.push(4);
    let msg = read_error("long-labels", &bytes, IdxKind::Labels);
    assert!(msg.contains("extra data"), "{msg}");
    let msg = read_error("long-labels.gz", &gz(&bytes), IdxKind::Labels);
    assert!(msg.contains("extra data"), "{msg}");
}

#[test]
fn wrong_magic_number_is_an_error() {
    let msg = read_error("zip", b"PK\x03\x04 not an idx file", IdxKind::Images);
    assert!(msg.contains("wrong magic number 0x504b0304"), "{msg}");
}

#[test]
fn wrong_dtype_is_an_error() {
    // 0x0D: float32 pixels, a valid IDX type but not the unsigned bytes MNIST uses.
    let mut bytes = images_idx(1, 1, 1, &[0; 4]);
    bytes[2] = 0x0d;
    let msg = read_error("float-images", &bytes, IdxKind::Images);
    assert!(msg.contains("data type byte 0x0d"), "{msg}");
}

#[test]
fn labels_file_read_as_images_is_a_rank_error() {
    let msg = read_error("labels-as-images", &labels_idx(&[1; 20]), IdxKind::Images);
    assert!(
        msg.contains("wrong rank 1") && msg.contains("rank 3"),
        "{msg}"
    );
}

#[test]
fn absurd_dimensions_fail_fast_without_allocating() {
    // 4e9 images of 28 x 28: 3.1 TB promised by a 116-byte file.
    let bytes = images_idx(4_000_000_000, 28, 28, &[0; 100]);
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in [("huge", bytes.clone()), ("huge.gz", gz(&bytes))] {
        let path = write(dir.path(), name, &content);
        let (result, largest, took) = measured(|| idx::read_file(&path, IdxKind::Images));
        let msg = result.expect_err("must not be accepted").to_string();
        assert!(msg.contains("4000000000 x 28 x 28"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            largest < 1 << 20,
            "{name}: allocated {largest} bytes at once"
        );
        assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
    }
}

#[test]
fn gzip_promising_more_than_it_can_hold_is_an_impossible_size() {
    // 100,000 images of 28 x 28 (78 MB) from ~100 bytes of gzip: beyond deflate's ratio.
    let bytes = gz(&images_idx(100_000, 28, 28, &[0; 10]));
    let msg = read_error("bomb.gz", &bytes, IdxKind::Images);
    assert!(msg.contains("impossible size"), "{msg}");
}

#[test]
fn gzip_ending_before_the_promised_size_is_truncated() {
    // Incompressible pixels: the gzip is big enough for its header's promise to be
    // plausible, so only the early end of the stream can tell.
    let pixels: Vec<u8> = (0u32..784 * 1_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut raw = images_idx(1_000, 28, 28, &pixels);
    raw.truncate(raw.len() / 2);
    let msg = read_error("half.gz", &gz(&raw), IdxKind::Images);
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn labels_out_of_range_are_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = write(dir.path(), "imgs", &images_idx(3, 1, 1, &[0, 1, 2]));
    let labels = write(dir.path(), "lbls", &labels_idx(&[0, 9, 10]));
    let msg = Split::from_files(&images, &labels)
        .expect_err("label 10 of 10 classes")
        .to_string();
    assert!(msg.contains(&labels.display().to_string()), "{msg}");
    assert!(
        msg.contains("label 10 of example 2 is out of range"),
        "{msg}"
    );
}

#[test]
fn image_label_count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = write(dir.path(), "imgs", &images_idx(3, 1, 1, &[0, 1, 2]));
    let labels = write(dir.path(), "lbls", &labels_idx(&[0, 1]));
    let msg = Split::from_files(&images, &labels)
        .expect_err("3 images, 2 labels")
        .to_string();
    assert!(msg.contains(&images.display().to_string()), "{msg}");
    assert!(msg.contains(&labels.display().to_string()), "{msg}");
    assert!(
        msg.contains("3 images") && msg.contains("2 labels"),
        "{msg}"
    );
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut bytes = gz(&images_idx(
        20,
        28,
        28,
        &(0..=255).cycle().take(20 * 784).collect::<Vec<_>>(),
    ));
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xa5;
    }
    let msg = read_error("corrupt.gz", &bytes, IdxKind::Images);
    assert!(msg.contains("corrupt gzip data"), "{msg}");
}

#[test]
fn gzip_missing_its_trailer_is_an_error() {
    let mut bytes = gz(&labels_idx(&[1, 2, 3, 4]));
    bytes.truncate(bytes.len() - 6);
    read_error("cut.gz", &bytes, IdxKind::Labels);
}

/// Small files with valid structure in `<dir>/mnist/`: everything but their checksum is right.
fn fake_dataset(dir: &Path) -> PathBuf {
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).expect("mkdir");
    let images = images_idx(2, 28, 28, &[0; 2 * 784]);
    let labels = labels_idx(&[3, 4]);
    write(&mnist, "train-images-idx3-ubyte", &images);
    write(&mnist, "train-labels-idx1-ubyte", &labels);
    write(&mnist, "t10k-images-idx3-ubyte.gz", &gz(&images));
    write(&mnist, "t10k-labels-idx1-ubyte", &labels);
    mnist
}

fn offline(dir: &Path) -> DataSource {
    DataSource {
        data_dir: dir.to_path_buf(),
        system_dirs: false,
        download: false,
    }
}

#[test]
fn checksum_mismatch_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnist = fake_dataset(dir.path());
    let err = offline(dir.path())
        .load(Dataset::Mnist, ImageShape::MNIST, 10)
        .expect_err("not the official files");
    assert!(matches!(err, DataError::Checksum { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
    let named_file = ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"]
        .iter()
        .any(|f| msg.contains(&mnist.join(f).display().to_string()));
    assert!(named_file, "{msg}");
}

#[test]
fn missing_files_error_says_how_to_get_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = offline(dir.path())
        .load(Dataset::FashionMnist, ImageShape::MNIST, 10)
        .expect_err("empty data dir");
    let msg = err.to_string();
    for needle in [
        "Fashion-MNIST files not found",
        "t10k-labels-idx1-ubyte",
        "scripts/fetch-data.sh",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        &dir.path().join("fashion_mnist").display().to_string(),
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in: {msg}");
    }
}

/// Valid small files to mutate: structure that the fuzzer then breaks.
fn seed_files() -> Vec<(Vec<u8>, IdxKind)> {
    let images = images_idx(3, 4, 5, &(0..60).collect::<Vec<u8>>());
    let labels = labels_idx(&[0, 5, 9]);
    vec![
        (gz(&images), IdxKind::Images),
        (gz(&labels), IdxKind::Labels),
        (images, IdxKind::Images),
        (labels, IdxKind::Labels),
    ]
}

fn decode_any(bytes: &[u8], kind: IdxKind) {
    // The outcome does not matter here, only that it is one (no panic, no abort).
    if let Ok(file) = idx::decode(bytes, Path::new("fuzz"), kind) {
        assert_eq!(file.data().len(), file.dims().iter().product::<usize>());
    }
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc.sum().to_be_bytes());
    chunk
}

/// A PNG of `width x height` 8-bit RGB pixels whose image data is `idat` (zlib).
fn png_bytes(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", idat));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

/// A valid 4 x 3 RGB PNG: each row a filter byte (0) and 12 samples.
fn small_png() -> Vec<u8> {
    let raw: Vec<u8> = (0..3u8)
        .flat_map(|y| std::iter::once(0).chain((0..12).map(move |x| y * 12 + x)))
        .collect();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&raw).expect("in-memory write");
    png_bytes(4, 3, &z.finish().expect("in-memory zlib"))
}

const RGB_3X4: ImageShape = ImageShape {
    channels: 3,
    height: 3,
    width: 4,
};

#[test]
fn hand_made_png_decodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "small.png", &small_png());
    let bytes = read_image(&path, RGB_3X4, false).expect("valid PNG");
    // Red of pixel (row 1, column 2) is sample 1 * 12 + 2 * 3.
    assert_eq!(bytes[4 + 2], 18);
}

#[test]
fn png_claiming_a_huge_size_fails_fast_without_allocating() {
    // 60,000 x 60,000 RGB: 10.8 GB promised by a 70-byte file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "huge.png", &png_bytes(60_000, 60_000, &[]));
    for resize in [false, true] {
        let (result, largest, took) = measured(|| read_image(&path, RGB_3X4, resize));
        let msg = result.expect_err("must not be accepted").to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            largest < 64 << 20,
            "resize {resize}: allocated {largest} bytes at once"
        );
        assert!(
            took < Duration::from_secs(1),
            "resize {resize}: took {took:?}"
        );
        if !resize {
            assert!(msg.contains("60000x60000"), "{msg}");
        }
    }
}

#[test]
fn file_that_is_no_image_at_all_is_a_decode_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "fake.png", b"just some text, not a PNG");
    let msg = read_image(&path, RGB_3X4, false)
        .expect_err("not an image")
        .to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("cannot decode the image"), "{msg}");
}

/// `$PROPTEST_CASES` if set, else `default`.
fn cases_or(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    // 2,000 cases by default; `PROPTEST_CASES=200000` for a long run.
    #![proptest_config(ProptestConfig {
        cases: cases_or(2_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_any(&bytes, IdxKind::Images);
        decode_any(&bytes, IdxKind::Labels);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_magic_never_panic(
        labels in any::<bool>(),
        gzipped in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = if labels { vec![0, 0, 8, 1] } else { vec![0, 0, 8, 3] };
        bytes.extend_from_slice(&tail);
        let bytes = if gzipped { gz(&bytes) } else { bytes };
        let kind = if labels { IdxKind::Labels } else { IdxKind::Images };
        decode_any(&bytes, kind);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        seed in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let (mut bytes, kind) = seed_files().swap_remove(seed);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep);
        }
        decode_any(&bytes, kind);
    }
}

proptest! {
    // Each case writes a file: fewer cases than the in-memory IDX fuzzing above.
    #![proptest_config(ProptestConfig {
        cases: cases_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_pngs_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
        resize in any::<bool>(),
    ) {
        let mut bytes = small_png();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "fuzz.png", &bytes);
        // The outcome does not matter, only that it is one (no panic, no abort).
        if let Ok(image) = read_image(&path, RGB_3X4, resize) {
            prop_assert_eq!(image.len(), 36);
        }
    }
}
