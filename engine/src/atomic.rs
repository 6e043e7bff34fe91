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
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|source| Error::Io { what: format!("write {}", path.display()), source })
}
