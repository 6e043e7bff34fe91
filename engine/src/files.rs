//! The files of an exploration: `report.json`, `call_graph.dot` and `report.html` in a report directory,
//! and the workspace whose sources the page shows.

use std::path::{Path, PathBuf};

use crate::atomic::write_atomically;
use crate::report::Report;
use crate::Error;

impl Report {
    /// Writes `report.json`, `call_graph.dot` and `report.html` into `dir` (each atomically: nothing
    /// half-written is left if the process dies) and returns the path of `report.json`. The page shows the
    /// sources of the workspace at `root`.
    pub fn write(&self, dir: &Path, root: &Path) -> Result<PathBuf, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { what: format!("create {}", dir.display()), source })?;
        let json = serde_json::to_string_pretty(self).expect("a report always serializes");
        let path = dir.join("report.json");
        write_atomically(&path, json.as_bytes())?;
        write_atomically(&dir.join("call_graph.dot"), self.call_graph.dot().as_bytes())?;
        crate::html::write(self, dir, root)?;
        Ok(path)
    }
}

/// The workspace root: the nearest directory upwards from the current one whose `Cargo.toml` declares a
/// `[workspace]`, else the current directory.
pub fn workspace_root() -> PathBuf {
    let current = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    current
        .ancestors()
        .find(|dir| std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|text| text.contains("[workspace]")))
        .map(PathBuf::from)
        .unwrap_or(current)
}
