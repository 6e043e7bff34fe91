//! Turns raw `.profraw` snapshots into [`LineCoverage`] and [`RegionCoverage`], memoising by the
//! bytes' hash so identical snapshots (the same code path taken again) cost nothing. Two ways to do
//! it: decode in process against the binaries' coverage mappings ([`crate::decode`], read once), or
//! run `llvm-profdata merge` + `llvm-cov export` per distinct snapshot ([`crate::process`]), the
//! fallback when a mapping cannot be read. Both give the same [`Export`] model.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use crate::decode::Decoder;
use crate::export::Export;
use crate::guard::{function_spans, FunctionSpan};
use crate::lines::LineCoverage;
use crate::process::LlvmTools;
use crate::regions::RegionCoverage;
use crate::Error;

/// What one snapshot (or one set of snapshots taken together) covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotCoverage {
    /// Instrumented and covered lines per file (LLVM's line rule).
    pub lines: LineCoverage,
    /// Every region per file with its count.
    pub regions: RegionCoverage,
}

#[derive(Debug)]
enum Backend {
    InProcess(Box<Decoder>),
    Tools { tools: LlvmTools, objects: Vec<PathBuf>, workdir: PathBuf },
}

/// Snapshot-to-coverage converter bound to one set of instrumented binaries.
#[derive(Debug)]
pub struct Processor {
    backend: Backend,
    root: PathBuf,
    cache: HashMap<u64, SnapshotCoverage>,
    spans: Vec<FunctionSpan>,
    sources: Vec<PathBuf>,
}

impl Processor {
    /// A processor running the LLVM tools. `objects` are the instrumented binaries the snapshots come
    /// from (the first is the main one); `root` is the workspace root used to make paths relative
    /// (absolute, as llvm-cov reports absolute paths); `workdir` receives temporary `.profraw` /
    /// `.profdata` files.
    pub fn new(tools: LlvmTools, objects: Vec<PathBuf>, root: PathBuf, workdir: PathBuf) -> Processor {
        Processor::with_backend(Backend::Tools { tools, objects, workdir }, root)
    }

    /// A processor decoding in process: reads the coverage mappings of `objects` now, once. Fails when
    /// none of them has a mapping or one cannot be read (then [`Processor::new`] is the way).
    pub fn in_process(objects: &[PathBuf], root: PathBuf) -> Result<Processor, Error> {
        Ok(Processor::with_backend(Backend::InProcess(Box::new(Decoder::open(objects)?)), root))
    }

    fn with_backend(backend: Backend, root: PathBuf) -> Processor {
        Processor { backend, root, cache: HashMap::new(), spans: Vec::new(), sources: Vec::new() }
    }

    /// Restricts the files to these sources (absolute paths): smaller exports and less decoding.
    pub fn with_sources(mut self, sources: Vec<PathBuf>) -> Processor {
        self.backend = match self.backend {
            Backend::InProcess(decoder) => Backend::InProcess(Box::new(decoder.with_sources(&sources))),
            tools => tools,
        };
        self.sources = sources;
        self
    }

    /// Whether snapshots are decoded in process (else the LLVM tools run).
    pub fn decodes_in_process(&self) -> bool {
        matches!(self.backend, Backend::InProcess(_))
    }

    /// Line coverage of one snapshot. Identical snapshots are answered from the cache (decoding in
    /// process: snapshots whose counters of the sources' functions are identical).
    pub fn lines_for(&mut self, profraw: &[u8]) -> Result<LineCoverage, Error> {
        self.lines_for_many(&[profraw])
    }

    /// Line coverage of several snapshots taken together (e.g. one per service process of one
    /// execution), merged into one profile. Cached like [`Processor::lines_for`].
    pub fn lines_for_many(&mut self, profraws: &[&[u8]]) -> Result<LineCoverage, Error> {
        Ok(self.coverage_for_many(profraws)?.lines)
    }

    /// Line and region coverage of several snapshots taken together, merged into one profile.
    pub fn coverage_for_many(&mut self, profraws: &[&[u8]]) -> Result<SnapshotCoverage, Error> {
        if profraws.is_empty() || profraws.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidInput { what: "profraw snapshot", value: String::new(), reason: "is empty" });
        }
        // In process, snapshots that differ only in counters outside the sources are the same.
        let (key, export) = match &self.backend {
            Backend::InProcess(decoder) => {
                let counts = decoder.counts(profraws)?;
                let key = counts.fingerprint();
                if let Some(hit) = self.cache.get(&key) {
                    return Ok(hit.clone());
                }
                (key, decoder.export_counts(&counts))
            }
            Backend::Tools { tools, objects, workdir } => {
                let key = snapshot_key(profraws);
                if let Some(hit) = self.cache.get(&key) {
                    return Ok(hit.clone());
                }
                (key, tools_export(tools, objects, workdir, &self.sources, profraws, key)?)
            }
        };
        let coverage = SnapshotCoverage {
            lines: LineCoverage::from_export(&export, &self.root),
            regions: RegionCoverage::from_export(&export, &self.root),
        };
        if self.spans.is_empty() {
            self.spans = function_spans(&export, &self.root);
        }
        self.cache.insert(key, coverage.clone());
        Ok(coverage)
    }

    /// Function spans from the first conversion (empty before it). Spans depend only on the binaries,
    /// not on the counts, so any snapshot's spans are valid for all snapshots of these objects.
    /// Decoding in process with sources, only the spans in those sources are known.
    pub fn function_spans(&self) -> &[FunctionSpan] {
        &self.spans
    }

    /// How many distinct snapshots have been converted (as far as the sources go, in process).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

/// Writes the snapshots to `workdir`, merges them to profdata and exports. Temporary files are removed
/// on success and kept on failure for inspection.
fn tools_export(
    tools: &LlvmTools,
    objects: &[PathBuf],
    workdir: &PathBuf,
    sources: &[PathBuf],
    profraws: &[&[u8]],
    key: u64,
) -> Result<Export, Error> {
    std::fs::create_dir_all(workdir).map_err(|source| Error::Io {
        action: "create workdir",
        path: workdir.clone(),
        source,
    })?;
    let mut raws = Vec::with_capacity(profraws.len());
    for (index, profraw) in profraws.iter().enumerate() {
        let raw = workdir.join(format!("snapshot-{key:016x}-{index}.profraw"));
        std::fs::write(&raw, profraw).map_err(|source| Error::Io {
            action: "write profraw",
            path: raw.clone(),
            source,
        })?;
        raws.push(raw);
    }
    let data = workdir.join(format!("snapshot-{key:016x}.profdata"));
    tools.merge(&raws, &data)?;
    let export = tools.export(&data, objects, sources)?;
    for p in raws.iter().chain(std::iter::once(&data)) {
        if let Err(e) = std::fs::remove_file(p) {
            tracing::debug!(path = %p.display(), error = %e, "cannot remove temporary file");
        }
    }
    Ok(export)
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
        assert!(!p.decodes_in_process());
        let bytes = b"pretend profraw".to_vec();
        let lines = LineCoverage { files: [("a.rs".to_owned(), FileLines::default())].into() };
        let cov = SnapshotCoverage { lines: lines.clone(), regions: RegionCoverage::default() };
        p.cache.insert(snapshot_key(&[&bytes]), cov.clone());
        assert_eq!(p.lines_for(&bytes).expect("cached"), lines);
        assert_eq!(p.coverage_for_many(&[&bytes]).expect("cached"), cov);

        let err = p.lines_for(b"different").expect_err("tools missing");
        assert!(err.to_string().starts_with("cannot run `/nonexistent/llvm-profdata merge"), "{err}");
        assert!(p.lines_for(&[]).is_err());
        assert_eq!(p.cached(), 1);
        std::fs::remove_dir_all(&workdir).expect("cleanup");
    }

    #[test]
    fn in_process_snapshots_differing_only_outside_the_sources_share_a_cache_entry() {
        use crate::mapping::{md5_low, Counter, CoverageMapping, FunctionMapping, MappingRegion, RegionKind};
        let function = |name: &str, file: u32| FunctionMapping {
            name: name.to_string(),
            name_ref: md5_low(name.as_bytes()),
            hash: 1,
            files: vec![file],
            expressions: Vec::new(),
            regions: vec![MappingRegion {
                count: Counter::Value(0),
                false_count: Counter::Zero,
                file_id: 0,
                expanded_file_id: 0,
                line_start: 1,
                col_start: 1,
                line_end: 3,
                col_end: 2,
                kind: RegionKind::Code,
            }],
        };
        let mapping = CoverageMapping {
            filenames: vec!["/w".into(), "/w/src/served.rs".into(), "/w/engine/loop.rs".into()],
            functions: vec![function("handler", 1), function("engine_loop", 2)],
        };
        let decoder = Decoder::new(vec![mapping]);
        let mut p = Processor::with_backend(Backend::InProcess(Box::new(decoder)), "/w".into())
            .with_sources(vec!["/w/src/served.rs".into()]);
        assert!(p.decodes_in_process());
        let snapshot = |handler: u64, engine: u64| {
            let names = |n: &str| md5_low(n.as_bytes());
            crate::profile::tests::raw_profile(&[
                (names("handler"), 1, vec![handler]),
                (names("engine_loop"), 1, vec![engine]),
            ])
        };
        let first = p.coverage_for_many(&[&snapshot(2, 7)]).expect("decodes");
        assert_eq!(first.lines.file("src/served.rs").expect("served").covered, [1, 2, 3].into());
        assert!(first.lines.file("engine/loop.rs").is_none(), "not a source");
        assert_eq!(p.coverage_for_many(&[&snapshot(2, 9)]).expect("decodes"), first);
        assert_eq!(p.cached(), 1, "the engine's counters do not matter");
        let other = p.coverage_for_many(&[&snapshot(0, 7)]).expect("decodes");
        assert!(other.lines.file("src/served.rs").expect("served").covered.is_empty());
        assert_eq!(p.cached(), 2);
        assert_eq!(p.function_spans().len(), 1);
    }

    #[test]
    fn a_binary_without_coverage_cannot_be_decoded_in_process() {
        // The test binary itself has no mapping unless built under cargo llvm-cov.
        let me = std::env::current_exe().expect("test binary");
        match Processor::in_process(std::slice::from_ref(&me), "/w".into()) {
            Ok(p) => {
                assert!(crate::runtime::enabled(), "only an instrumented build has a mapping");
                assert!(p.decodes_in_process());
            }
            Err(err) => {
                assert!(!crate::runtime::enabled());
                assert!(matches!(err, Error::NoMapping { .. }), "{err}");
                assert!(err.to_string().contains("has no coverage mapping"), "{err}");
            }
        }
        let err = Processor::in_process(&["/nonexistent/binary".into()], "/w".into()).expect_err("no file");
        assert!(err.to_string().starts_with("cannot open /nonexistent/binary"), "{err}");
    }
}
