//! Downloads from the official mirrors, verified before they are kept.
//!
//! A download lands in a temporary file next to its destination, is decoded and checked
//! against the official SHA-256, and only then renamed into place: an interrupted or
//! tampered download never leaves a file that a later run would trust.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files::OfficialFile;
use super::idx;

/// The largest official `.gz` is 26.4 MB; anything much larger is not what we asked for.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// Downloads `<mirror><name>.gz` into `dir/<name>.gz`, trying the mirrors in order.
///
/// A mirror that fails is skipped for the remaining files (`dead_mirrors`), so an offline
/// machine pays one connection failure per mirror, not one per file. Returns the path of
/// the verified file, or one line per failed attempt.
pub fn download(
    file: &OfficialFile,
    mirrors: &[&str],
    dir: &Path,
    dead_mirrors: &mut Vec<String>,
) -> Result<PathBuf, Vec<String>> {
    let mut failures = Vec::new();
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .build();
    for mirror in mirrors {
        if dead_mirrors.iter().any(|m| m == mirror) {
            continue;
        }
        let url = format!("{mirror}{}.gz", file.name);
        match download_one(&agent, &url, file, dir) {
            Ok(path) => return Ok(path),
            Err(Failure::Mirror(e)) => {
                dead_mirrors.push(mirror.to_string());
                failures.push(format!("{url}: {e}"));
            }
            Err(Failure::File(e)) => failures.push(format!("{url}: {e}")),
        }
    }
    // Empty when every mirror already failed for an earlier file: said once, there.
    Err(failures)
}

enum Failure {
    /// The mirror is unreachable: no point asking it for the other files.
    Mirror(String),
    /// This file was bad (checksum, size, disk): another mirror may do better.
    File(String),
}

fn download_one(
    agent: &ureq::Agent,
    url: &str,
    file: &OfficialFile,
    dir: &Path,
) -> Result<PathBuf, Failure> {
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, _) => Failure::File(format!("HTTP status {code}")),
        ureq::Error::Transport(t) => Failure::Mirror(match t.message() {
            Some(m) => format!("{}: {m}", t.kind()),
            None => t.kind().to_string(),
        }),
    })?;
    // Created only now: a failed download leaves no empty folders behind.
    fs::create_dir_all(dir)
        .map_err(|e| Failure::File(format!("cannot create {}: {e}", dir.display())))?;
    let dest = dir.join(format!("{}.gz", file.name));
    let tmp = dir.join(format!(".{}.gz.part-{}", file.name, std::process::id()));
    let result = write_verified(response.into_reader(), &tmp, &dest, file);
    if result.is_err() {
        // Best effort: the temporary name is ours alone and never trusted by a lookup.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| dest)
}

fn write_verified(
    body: impl Read,
    tmp: &Path,
    dest: &Path,
    file: &OfficialFile,
) -> Result<(), Failure> {
    let io_fail =
        |what: &str, e: io::Error| Failure::File(format!("{what} {}: {e}", tmp.display()));
    let mut out = fs::File::create(tmp).map_err(|e| io_fail("cannot create", e))?;
    let copied = io::copy(&mut body.take(MAX_DOWNLOAD_BYTES + 1), &mut out)
        .map_err(|e| Failure::Mirror(format!("download interrupted: {e}")))?;
    if copied > MAX_DOWNLOAD_BYTES {
        return Err(Failure::File(format!(
            "response larger than {MAX_DOWNLOAD_BYTES} bytes, not an MNIST file"
        )));
    }
    out.flush().map_err(|e| io_fail("cannot write", e))?;
    out.sync_all().map_err(|e| io_fail("cannot sync", e))?;
    drop(out);
    let decoded = idx::read_file(tmp, file.kind).map_err(|e| Failure::File(e.to_string()))?;
    let sha = decoded.sha256_hex();
    if sha != file.sha256 {
        return Err(Failure::File(format!(
            "checksum mismatch: SHA-256 {sha}, official {}",
            file.sha256
        )));
    }
    fs::rename(tmp, dest).map_err(|e| io_fail("cannot rename", e))
}
