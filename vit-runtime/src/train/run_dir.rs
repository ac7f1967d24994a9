//! A run directory: one writer at a time, and a finished run is never replaced unasked.
//!
//! A run holds an advisory lock on `<dir>/.lock` for as long as it runs. The operating
//! system releases it when the process ends, however it ends, so a run killed mid-epoch
//! never blocks its `--resume`. A directory that already holds a run (a checkpoint or a
//! metrics log) is refused unless the caller asked to resume it or to overwrite it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The files a run writes; [`Existing::Overwrite`] removes them before the new run starts.
pub const ARTEFACTS: [&str; 7] = [
    CHECKPOINT,
    METRICS,
    SPEC,
    CURVES,
    CONFUSION_PLOT,
    CONFUSION_TABLE,
    "checkpoint.tmp",
];
/// The model's weights and the optimizer's state, written atomically every epoch.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// One JSON record per logged step and per epoch.
pub const METRICS: &str = "metrics.jsonl";
/// The spec the run was trained from, as compiled.
pub const SPEC: &str = "spec.yaml";
/// Loss and accuracy per epoch.
pub const CURVES: &str = "curves.png";
pub const CONFUSION_PLOT: &str = "confusion.png";
pub const CONFUSION_TABLE: &str = "confusion.txt";
const LOCK: &str = ".lock";

/// What to do with a directory that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse to start (the default: nothing is replaced without being asked).
    Refuse,
    /// Continue it from its checkpoint.
    Resume,
    /// Remove its files and start afresh.
    Overwrite,
}

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error(
        "{} already holds a run ({}): continue it with --resume, replace it with --overwrite, \
         or choose another --out",
        .dir.display(), .found.join(", ")
    )]
    HoldsRun {
        dir: PathBuf,
        found: Vec<&'static str>,
    },
    #[error(
        "{} is in use by another run ({holder}): wait for it to finish or choose another --out",
        .dir.display()
    )]
    Busy { dir: PathBuf, holder: String },
    #[error("{} is not a directory: choose another --out", .dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("cannot use run directory {}: {source}", .dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A run directory this process holds the lock of; released when dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    lock: File,
    /// Whether this claim created the directory: if the run then writes nothing, the
    /// directory goes away with the claim, as if it had never started.
    created: bool,
}

impl RunDir {
    /// Creates `path` if needed, takes its lock, and refuses a run already there unless
    /// `existing` says what to do with it. Nothing in the directory is changed yet: an
    /// overwrite happens in [`RunDir::clear`], once the new run is ready to write.
    pub fn claim(path: &Path, existing: Existing) -> Result<RunDir, RunDirError> {
        let io = |source| RunDirError::Io {
            dir: path.to_path_buf(),
            source,
        };
        if path.exists() && !path.is_dir() {
            return Err(RunDirError::NotADirectory { dir: path.into() });
        }
        let created = !path.exists();
        std::fs::create_dir_all(path).map_err(io)?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "its process is starting".to_string(),
                    text => text.to_string(),
                };
                return Err(RunDirError::Busy {
                    dir: path.into(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let found = run_files(path);
        if existing == Existing::Refuse && !found.is_empty() {
            return Err(RunDirError::HoldsRun {
                dir: path.into(),
                found,
            });
        }
        write_holder(&mut lock).map_err(io)?;
        Ok(RunDir {
            path: path.into(),
            lock,
            created,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the files of the run that was there before (after [`Existing::Overwrite`]).
    pub fn clear(&self) -> Result<(), RunDirError> {
        for name in ARTEFACTS {
            match std::fs::remove_file(self.path.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RunDirError::Io {
                        dir: self.path.clone(),
                        source: e,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = self.lock.unlock();
        if self.created && run_files(&self.path).is_empty() && only_lock_in(&self.path) {
            let _ = std::fs::remove_file(self.path.join(LOCK));
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Whether `dir` holds a run: its checkpoint or its metrics log.
pub fn holds_run(dir: &Path) -> bool {
    !run_files(dir).is_empty()
}

fn run_files(dir: &Path) -> Vec<&'static str> {
    [CHECKPOINT, METRICS]
        .into_iter()
        .filter(|name| dir.join(name).exists())
        .collect()
}

fn only_lock_in(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .all(|entry| entry.file_name() == LOCK)
    })
}

/// Records who holds the lock, for the message a second run gets.
fn write_holder(lock: &mut File) -> std::io::Result<()> {
    let command: Vec<String> = std::env::args().collect();
    lock.set_len(0)?;
    lock.rewind()?;
    writeln!(lock, "pid {}: {}", std::process::id(), command.join(" "))?;
    lock.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_while_the_first_holds_the_lock_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let first = RunDir::claim(&dir, Existing::Refuse).unwrap();
        let error = RunDir::claim(&dir, Existing::Resume).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, RunDirError::Busy { .. }), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        RunDir::claim(&dir, Existing::Refuse).expect("the lock is free once dropped");
    }

    #[test]
    fn a_directory_with_a_run_is_refused_unless_resumed_or_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(super::METRICS), "{}\n").unwrap();
        let error = RunDir::claim(tmp.path(), Existing::Refuse).unwrap_err();
        assert!(
            matches!(&error, RunDirError::HoldsRun { found, .. } if found == &["metrics.jsonl"]),
            "{error}"
        );
        drop(RunDir::claim(tmp.path(), Existing::Resume).unwrap());
        let claim = RunDir::claim(tmp.path(), Existing::Overwrite).unwrap();
        assert!(holds_run(tmp.path()), "claiming changes nothing");
        claim.clear().unwrap();
        assert!(!holds_run(tmp.path()));
    }

    #[test]
    fn a_directory_the_claim_created_goes_away_if_the_run_wrote_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new");
        drop(RunDir::claim(&dir, Existing::Refuse).unwrap());
        assert!(!dir.exists());

        let kept = tmp.path().join("kept");
        std::fs::create_dir(&kept).unwrap();
        drop(RunDir::claim(&kept, Existing::Refuse).unwrap());
        assert!(kept.is_dir(), "a directory that was there stays");
    }

    #[test]
    fn a_file_is_not_a_run_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = RunDir::claim(&file, Existing::Refuse).unwrap_err();
        assert!(
            matches!(error, RunDirError::NotADirectory { .. }),
            "{error}"
        );
    }
}
