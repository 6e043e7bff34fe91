//! Turns raw `.profraw` snapshots into [`LineCoverage`] by running the LLVM
//! tools, memoising by the bytes' hash so identical snapshots (the same code
//! path taken again) cost nothing.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use crate::guard::{function_spans, FunctionSpan};
use crate::lines::LineCoverage;
use crate::process::LlvmTools;
use crate::Error;

/// Snapshot-to-lines converter bound to one set of instrumented binaries.
#[derive(Debug)]
pub struct Processor {
    tools: LlvmTools,
    objects: Vec<PathBuf>,
    root: PathBuf,
    workdir: PathBuf,
    cache: HashMap<u64, LineCoverage>,
    spans: Vec<FunctionSpan>,
    sources: Vec<PathBuf>,
}

impl Processor {
    /// `objects` are the instrumented binaries the snapshots come from (the
    /// first is the main one); `root` is the workspace root used to make
    /// paths relative (absolute, as llvm-cov reports absolute paths);
    /// `workdir` receives temporary `.profraw` / `.profdata` files.
    pub fn new(tools: LlvmTools, objects: Vec<PathBuf>, root: PathBuf, workdir: PathBuf) -> Processor {
        Processor { tools, objects, root, workdir, cache: HashMap::new(), spans: Vec::new(), sources: Vec::new() }
    }

    /// Restricts the exported files to these sources (absolute paths): exports are smaller and faster.
    pub fn with_sources(mut self, sources: Vec<PathBuf>) -> Processor {
        self.sources = sources;
        self
    }

    /// Line coverage of one snapshot: write it to the workdir, merge it to
    /// profdata, export, convert. Byte-identical snapshots are answered from
    /// the cache without running any tool. Temporary files are removed on
    /// success and kept on failure for inspection.
    pub fn lines_for(&mut self, profraw: &[u8]) -> Result<LineCoverage, Error> {
        if profraw.is_empty() {
            return Err(Error::InvalidInput { what: "profraw snapshot", value: String::new(), reason: "is empty" });
        }
        self.lines_for_many(&[profraw])
    }

    /// Line coverage of several snapshots taken together (e.g. one per service process of one
    /// execution), merged into one profile. Cached like [`Processor::lines_for`].
    pub fn lines_for_many(&mut self, profraws: &[&[u8]]) -> Result<LineCoverage, Error> {
        if profraws.is_empty() || profraws.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidInput { what: "profraw snapshot", value: String::new(), reason: "is empty" });
        }
        let key = snapshot_key(profraws);
        if let Some(hit) = self.cache.get(&key) {
            tracing::trace!(key, "coverage cache hit");
            return Ok(hit.clone());
        }
        std::fs::create_dir_all(&self.workdir).map_err(|source| Error::Io {
            action: "create workdir",
            path: self.workdir.clone(),
            source,
        })?;
        let mut raws = Vec::with_capacity(profraws.len());
        for (index, profraw) in profraws.iter().enumerate() {
            let raw = self.workdir.join(format!("snapshot-{key:016x}-{index}.profraw"));
            std::fs::write(&raw, profraw).map_err(|source| Error::Io {
                action: "write profraw",
                path: raw.clone(),
                source,
            })?;
            raws.push(raw);
        }
        let data = self.workdir.join(format!("snapshot-{key:016x}.profdata"));
        self.tools.merge(&raws, &data)?;
        let export = self.tools.export(&data, &self.objects, &self.sources)?;
        let lines = LineCoverage::from_export(&export, &self.root);
        self.spans = function_spans(&export, &self.root);
        for p in raws.iter().chain(std::iter::once(&data)) {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::debug!(path = %p.display(), error = %e, "cannot remove temporary file");
            }
        }
        self.cache.insert(key, lines.clone());
        Ok(lines)
    }

    /// Function spans from the most recent export (empty before the first).
    /// Spans depend only on the binaries, not on the counts, so any export's
    /// spans are valid for all snapshots of these objects.
    pub fn function_spans(&self) -> &[FunctionSpan] {
        &self.spans
    }

    /// How many distinct snapshots have been converted.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

/// The cache key of a set of snapshots.
fn snapshot_key(profraws: &[&[u8]]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for profraw in profraws {
        profraw.hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::FileLines;

    #[test]
    fn identical_snapshots_hit_the_cache_without_tools() {
        // Tools that would fail if run: a cache hit must not run them.
        let tools = LlvmTools { profdata: "/nonexistent/llvm-profdata".into(), cov: "/nonexistent/llvm-cov".into() };
        let workdir = std::env::temp_dir().join(format!("cloture-coverage-cache-{}", std::process::id()));
        let mut p = Processor::new(tools, vec!["/bin/x".into()], "/w".into(), workdir.clone());
        let bytes = b"pretend profraw".to_vec();
        let cov = LineCoverage { files: [("a.rs".to_owned(), FileLines::default())].into() };
        p.cache.insert(snapshot_key(&[&bytes]), cov.clone());
        assert_eq!(p.lines_for(&bytes).expect("cached"), cov);

        let err = p.lines_for(b"different").expect_err("tools missing");
        assert!(err.to_string().starts_with("cannot run `/nonexistent/llvm-profdata merge"), "{err}");
        assert!(p.lines_for(&[]).is_err());
        assert_eq!(p.cached(), 1);
        std::fs::remove_dir_all(&workdir).expect("cleanup");
    }
}
