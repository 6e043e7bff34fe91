//! Atomic file writes: a reader never sees a half-written report, also when the process dies mid-write.

use std::path::Path;

use crate::Error;

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`. The temporary file is named
/// after the whole file name, the process and a sequence number: `report.json` and `report.html` never
/// share one, nor do two writes at once.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}-{sequence}", std::process::id()));
    let temporary = path.with_file_name(name);
    let written = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        // Nothing half-written stays behind, whatever failed.
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(|source| Error::Io { what: format!("write {}", path.display()), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d9_a_failed_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("cloture-atomic-{}", std::process::id()));
        let target = dir.join("report.json");
        std::fs::create_dir_all(&target).expect("a directory where the file should go");
        assert!(write_atomically(&target, b"{}").is_err());
        let left: Vec<_> = std::fs::read_dir(&dir).expect("readable").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(left, ["report.json"], "only the directory that was in the way");
        std::fs::remove_dir_all(&dir).ok();
    }
}
