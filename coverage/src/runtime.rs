//! Hooks into the LLVM profile runtime that rustc links into binaries built
//! with `-C instrument-coverage`: reset the counters, snapshot them as raw
//! `.profraw` bytes, and drop a snapshot where `cargo llvm-cov report` will
//! find it. Active only under `cfg(coverage)` (cargo-llvm-cov passes
//! `--cfg=coverage` unless run with `--no-cfg-coverage`); every function is
//! a harmless no-op otherwise.
//!
//! Where cargo-llvm-cov collects profiles (checked in cargo-llvm-cov 0.9.1,
//! `src/main.rs::set_env` and `src/report.rs::merge_profraw`):
//! - it sets `LLVM_PROFILE_FILE=<target>/llvm-cov-target/<pkg>-%p-%m.profraw`
//!   (or `<dir>/$LLVM_PROFILE_FILE_NAME`), the directory being its target dir;
//! - `report` merges `glob("<that dir>/*.profraw")` (not recursive) with
//!   `llvm-profdata merge -sparse`.
//!
//! So a snapshot written as `<dir>/<tag>-<pid>-<n>.profraw` is merged into the
//! final report. Snapshots matter because [`reset`] also wipes what the
//! runtime would otherwise write at exit: after a reset, the exit-time
//! profile only holds counts since the last reset. Counts simply add up in a
//! merge, so snapshots plus the exit profile never under-report.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

#[cfg(coverage)]
mod ffi {
    use std::ffi::{c_char, c_int};

    // Declared in compiler-rt's profile/InstrProfiling.h.
    extern "C" {
        pub fn __llvm_profile_reset_counters();
        pub fn __llvm_profile_get_size_for_buffer() -> u64;
        pub fn __llvm_profile_write_buffer(buffer: *mut c_char) -> c_int;
    }
}

/// True when this build is instrumented for coverage (`cfg(coverage)`).
pub fn enabled() -> bool {
    cfg!(coverage)
}

/// Zeroes all profile counters of the process (no-op when not enabled).
///
/// Counters are process-wide and updated without locks: code running on
/// other threads during a reset or snapshot may be partly counted. Worse,
/// rustc derives many region counts as sums/differences of a few physical
/// counters, so a function that is *executing* across a reset (e.g. the
/// caller of `reset` itself, or a long-lived server loop) gets meaningless
/// counts afterwards (typically 0). Reset between requests, not inside the
/// code you want to measure; functions entered after the reset are exact.
pub fn reset() {
    #[cfg(coverage)]
    // SAFETY: takes no arguments and only writes the runtime's own counters.
    unsafe {
        ffi::__llvm_profile_reset_counters();
    }
}

/// The current counters as raw `.profraw` bytes, or `None` when not enabled
/// or when the runtime reports a failure.
#[cfg(coverage)]
pub fn snapshot() -> Option<Vec<u8>> {
    // SAFETY: the size query has no preconditions.
    let size = unsafe { ffi::__llvm_profile_get_size_for_buffer() };
    let size = usize::try_from(size).ok().filter(|&s| s > 0)?;
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` holds exactly the number of bytes the runtime asked for.
    let rc = unsafe { ffi::__llvm_profile_write_buffer(buf.as_mut_ptr().cast()) };
    if rc != 0 {
        tracing::warn!(rc, "__llvm_profile_write_buffer failed");
        return None;
    }
    Some(buf)
}

/// The current counters as raw `.profraw` bytes, or `None` when not enabled
/// or when the runtime reports a failure.
#[cfg(not(coverage))]
pub fn snapshot() -> Option<Vec<u8>> {
    None
}

/// Directory where cargo-llvm-cov collects `.profraw` files: the directory
/// part of `LLVM_PROFILE_FILE`. `None` when not enabled, when the variable
/// is unset, or when its directory part contains a `%` pattern.
pub fn profile_dir() -> Option<PathBuf> {
    if !enabled() {
        return None;
    }
    let cwd = std::env::current_dir().ok()?;
    profile_dir_from(std::env::var_os("LLVM_PROFILE_FILE").as_deref(), &cwd)
}

/// Pure part of [`profile_dir`]: relative values resolve against `cwd`.
fn profile_dir_from(value: Option<&OsStr>, cwd: &Path) -> Option<PathBuf> {
    let value = Path::new(value.filter(|v| !v.is_empty())?);
    let dir = value.parent().unwrap_or(Path::new(""));
    if dir.to_string_lossy().contains('%') {
        return None;
    }
    Some(if dir.is_absolute() { dir.to_path_buf() } else { cwd.join(dir) })
}

/// Writes a snapshot into [`profile_dir`] as `<tag>-<pid>-<n>.profraw`
/// (`n` counts up per process) and returns its path. `tag` must be
/// non-empty ASCII letters, digits, `-` or `_`.
pub fn write_profraw(bytes: &[u8], tag: &str) -> Result<PathBuf, Error> {
    let dir = profile_dir().ok_or_else(|| Error::NoProfileDir {
        value: std::env::var("LLVM_PROFILE_FILE").unwrap_or_else(|_| "unset".to_owned()),
    })?;
    write_profraw_in(&dir, bytes, tag)
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn write_profraw_in(dir: &Path, bytes: &[u8], tag: &str) -> Result<PathBuf, Error> {
    if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(Error::InvalidInput {
            what: "profraw tag",
            value: tag.to_owned(),
            reason: "must be non-empty ascii letters, digits, '-' or '_'",
        });
    }
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{tag}-{}-{n}.profraw", std::process::id()));
    std::fs::write(&path, bytes).map_err(|source| Error::Io { action: "write profraw", path: path.clone(), source })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_no_ops_without_coverage() {
        if enabled() {
            // Under `cargo llvm-cov` the hooks are live. Do not reset here: it
            // would wipe the counts of every other test in this process.
            assert!(snapshot().is_some_and(|b| !b.is_empty()));
            assert!(profile_dir().is_some());
            return;
        }
        reset();
        assert_eq!(snapshot(), None);
        assert_eq!(profile_dir(), None);
        let err = write_profraw(b"x", "t").expect_err("no profile dir");
        assert!(err.to_string().starts_with("no profile directory"), "{err}");
    }

    #[test]
    fn profile_dir_is_the_directory_of_llvm_profile_file() {
        let cwd = Path::new("/cwd");
        let v = |s: &str| profile_dir_from(Some(OsStr::new(s)), cwd);
        assert_eq!(v("/t/llvm-cov-target/pkg-%p-%m.profraw"), Some("/t/llvm-cov-target".into()));
        assert_eq!(v("default.profraw"), Some("/cwd".into()));
        assert_eq!(v("out/x.profraw"), Some("/cwd/out".into()));
        assert_eq!(v("/t/%p/x.profraw"), None);
        assert_eq!(v(""), None);
        assert_eq!(profile_dir_from(None, cwd), None);
    }

    #[test]
    fn write_profraw_names_files_by_tag_pid_and_sequence() {
        let dir = std::env::temp_dir().join(format!("cloture-coverage-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let a = write_profraw_in(&dir, b"abc", "exec-1").expect("write");
        let b = write_profraw_in(&dir, b"abc", "exec-1").expect("write");
        assert_ne!(a, b);
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("exec-1-{}-", std::process::id())) && name.ends_with(".profraw"), "{name}");
        assert_eq!(std::fs::read(&a).expect("read"), b"abc");
        let err = write_profraw_in(&dir, b"", "a/b").expect_err("bad tag");
        assert!(err.to_string().contains("\"a/b\""), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
