//! Raw profile snapshots to coverage in process: the [`Decoder`] holds the coverage mappings of the
//! instrumented binaries (read once) and turns snapshots into the same [`Export`] model that
//! `llvm-profdata merge -sparse` followed by `llvm-cov export` gives, without running either.
//!
//! Refs: llvm/lib/ProfileData/Coverage/CoverageMapping.cpp (`CoverageMapping::loadFunctionRecord`,
//! `CounterMappingContext::evaluate`, `getCoverageForFile`, `getUniqueSourceFiles`). Which functions
//! count follows llvm-cov: counters under another structural hash leave a function out; a name without
//! counters (or with only zero counters, which a sparse merge drops) counts zero; a single zero region
//! of a function that has counts elsewhere is left out; a counter the profile does not have leaves the
//! function out; a function already loaded with the same name and files is not loaded again. A file's
//! segments come from the code, gap, skipped and expansion regions of every loaded function that names
//! it ([`crate::segments`]); branch regions are listed per function only.
//!
//! With sources set, only the functions that name one of them are evaluated and only those files are
//! listed: the segments of those files are the same as without the restriction.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::export::{BranchRegion, Export, ExportData, ExportFile, ExportFunction, Region};
use crate::mapping::{Counter, CoverageMapping, Expression, FunctionMapping, RegionKind};
use crate::profile::{KeySet, Lookup, ProfileCounts};
use crate::segments::{build_segments, clamp, CountedRegion};
use crate::Error;

/// A function of one of the mappings, with what does not depend on a profile worked out once.
#[derive(Debug, Clone)]
struct Function {
    mapping: usize,
    index: usize,
    /// The name without a `file;` prefix (llvm-cov's `getFuncNameWithoutPrefix`).
    name: String,
    /// The function's file ids as indices into [`Decoder::files`].
    files: Vec<u32>,
    /// Whether it names a selected source (always, without sources).
    selected: bool,
    /// Same for functions of the same name and files: llvm-cov loads only the first of them.
    provenance: usize,
}

/// Snapshot bytes to coverage, for one set of instrumented binaries.
#[derive(Debug, Clone)]
pub struct Decoder {
    mappings: Vec<CoverageMapping>,
    /// Every distinct filename of the mappings.
    files: Vec<String>,
    /// Which of [`Decoder::files`] are listed; `None`: all.
    listed: Option<Vec<bool>>,
    functions: Vec<Function>,
    /// Name hashes of the selected functions; `None`: all.
    names: Option<KeySet<u64>>,
}

/// A function loaded with a profile's counts: regions with their counts, in mapping order.
struct Loaded<'a> {
    function: &'a Function,
    mapping: &'a FunctionMapping,
    counts: Vec<(u64, u64)>,
}

impl Decoder {
    /// Reads the mappings of `objects` (the instrumented executables whose snapshots will be decoded, in
    /// the order llvm-cov would be given them). Objects without a coverage mapping are skipped, as
    /// llvm-cov skips them; it is an error when none has one or one cannot be read.
    pub fn open(objects: &[PathBuf]) -> Result<Decoder, Error> {
        let mut mappings = Vec::new();
        let mut missing = None;
        for path in objects {
            match CoverageMapping::read(path) {
                Ok(mapping) => mappings.push(mapping),
                Err(error @ Error::NoMapping { .. }) => {
                    tracing::debug!(%error, "object skipped");
                    missing = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        if mappings.is_empty() {
            return Err(missing.unwrap_or(Error::InvalidInput {
                what: "object list",
                value: String::new(),
                reason: "needs at least one instrumented binary",
            }));
        }
        Ok(Decoder::new(mappings))
    }

    /// A decoder over mappings already read.
    pub fn new(mappings: Vec<CoverageMapping>) -> Decoder {
        let mut files: Vec<String> = Vec::new();
        let mut file_ids: HashMap<String, u32> = HashMap::new();
        let mut functions = Vec::new();
        let mut provenances: HashMap<(Vec<u32>, String), usize> = HashMap::new();
        for (mapping_index, mapping) in mappings.iter().enumerate() {
            let ids: Vec<u32> = mapping
                .filenames
                .iter()
                .map(|name| {
                    *file_ids.entry(name.clone()).or_insert_with(|| {
                        files.push(name.clone());
                        (files.len() - 1) as u32
                    })
                })
                .collect();
            for (index, function) in mapping.functions.iter().enumerate() {
                let files: Vec<u32> = function.files.iter().map(|&f| ids[f as usize]).collect();
                let first = function.files.first().map(|&f| mapping.filenames[f as usize].as_str());
                let name = name_without_prefix(&function.name, first).to_string();
                let next = provenances.len();
                let provenance = *provenances.entry((files.clone(), name.clone())).or_insert(next);
                functions.push(Function { mapping: mapping_index, index, name, files, selected: true, provenance });
            }
        }
        Decoder { mappings, files, listed: None, functions, names: None }
    }

    /// Lists only these source files (absolute paths, as the mapping names them) and evaluates only the
    /// functions that name one of them.
    pub fn with_sources(mut self, sources: &[PathBuf]) -> Decoder {
        let wanted: HashSet<&Path> = sources.iter().map(PathBuf::as_path).collect();
        let listed: Vec<bool> = self.files.iter().map(|f| wanted.contains(Path::new(f))).collect();
        let mut names = KeySet::default();
        for function in &mut self.functions {
            function.selected = function.files.iter().any(|&f| listed[f as usize]);
            if function.selected {
                names.insert(self.mappings[function.mapping].functions[function.index].name_ref);
            }
        }
        self.listed = Some(listed);
        self.names = Some(names);
        self
    }

    /// Number of functions in the mappings.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// What `llvm-cov export` shows for the merge of these raw profiles: the files (sorted by name)
    /// with their segments, and the loaded functions with their regions, counts clamped to `i64::MAX`.
    pub fn export(&self, profraws: &[&[u8]]) -> Result<Export, Error> {
        Ok(self.export_counts(&self.counts(profraws)?))
    }

    /// The counters of these raw profiles merged, only those of selected functions kept: all that
    /// [`Decoder::export_counts`] depends on.
    pub fn counts(&self, profraws: &[&[u8]]) -> Result<ProfileCounts, Error> {
        let mut counts = ProfileCounts::default();
        for raw in profraws {
            counts.add_names(raw, self.names.as_ref()).map_err(|reason| Error::BadProfile { reason })?;
        }
        Ok(counts)
    }

    /// [`Decoder::export`] of counters already read.
    pub fn export_counts(&self, counts: &ProfileCounts) -> Export {
        let mut seen = vec![false; self.functions.len()];
        let mut loaded = Vec::new();
        let mut evaluator = Evaluator::default();
        for function in self.functions.iter().filter(|f| f.selected) {
            let mapping = &self.mappings[function.mapping].functions[function.index];
            let Some(counts) = evaluator.load(mapping, counts) else { continue };
            if !std::mem::replace(&mut seen[function.provenance], true) {
                loaded.push(Loaded { function, mapping, counts });
            }
        }
        let files = self.file_segments(&loaded);
        let functions = loaded.iter().map(|l| self.export_function(l)).collect();
        Export { version: None, kind: None, data: vec![ExportData { files, functions }] }
    }

    /// The segments of every listed file that a loaded function names, sorted by filename.
    fn file_segments(&self, loaded: &[Loaded<'_>]) -> Vec<ExportFile> {
        let mut by_file: Vec<Option<Vec<CountedRegion>>> = vec![None; self.files.len()];
        for l in loaded {
            for &file in &l.function.files {
                if self.listed.as_ref().is_none_or(|listed| listed[file as usize]) {
                    by_file[file as usize].get_or_insert_with(Vec::new);
                }
            }
            for (region, &(count, false_count)) in l.mapping.regions.iter().zip(&l.counts) {
                if region.kind.is_branch() || region.kind == RegionKind::McdcDecision {
                    continue;
                }
                let file = l.function.files[region.file_id as usize] as usize;
                if let Some(regions) = &mut by_file[file] {
                    regions.push(CountedRegion {
                        line_start: region.line_start,
                        col_start: region.col_start,
                        line_end: region.line_end,
                        col_end: region.col_end,
                        kind: region.kind,
                        count,
                        false_count,
                    });
                }
            }
        }
        let mut files: Vec<ExportFile> = by_file
            .into_iter()
            .enumerate()
            .filter_map(|(file, regions)| {
                let mut regions = regions?;
                Some(ExportFile { filename: self.files[file].clone(), segments: build_segments(&mut regions) })
            })
            .collect();
        files.sort_unstable_by(|a, b| a.filename.cmp(&b.filename));
        files
    }

    fn export_function(&self, l: &Loaded<'_>) -> ExportFunction {
        let mut function = ExportFunction {
            name: l.function.name.clone(),
            count: 0,
            regions: Vec::new(),
            branches: Vec::new(),
            filenames: l.function.files.iter().map(|&f| self.files[f as usize].clone()).collect(),
        };
        for (region, &(count, false_count)) in l.mapping.regions.iter().zip(&l.counts) {
            match region.kind {
                RegionKind::McdcDecision => {}
                kind if kind.is_branch() => function.branches.push(BranchRegion {
                    line_start: region.line_start,
                    col_start: region.col_start,
                    line_end: region.line_end,
                    col_end: region.col_end,
                    true_count: clamp(count),
                    false_count: clamp(false_count),
                    file_id: region.file_id,
                    expanded_file_id: region.expanded_file_id,
                    kind: kind as u32,
                }),
                kind => {
                    if function.regions.is_empty() {
                        function.count = clamp(count);
                    }
                    function.regions.push(Region {
                        line_start: region.line_start,
                        col_start: region.col_start,
                        line_end: region.line_end,
                        col_end: region.col_end,
                        count: clamp(count),
                        file_id: region.file_id,
                        expanded_file_id: region.expanded_file_id,
                        kind: kind as u32,
                    });
                }
            }
        }
        function
    }
}

/// `name` without a leading `file` and its separator, as llvm-cov names local functions.
fn name_without_prefix<'a>(name: &'a str, file: Option<&str>) -> &'a str {
    match file {
        Some(file) if !file.is_empty() && name.len() > file.len() && name.starts_with(file) => &name[file.len() + 1..],
        _ => name,
    }
}

/// Evaluates counters, its buffers kept from one function to the next.
#[derive(Default)]
struct Evaluator {
    /// Expression values of the current function.
    memo: Vec<Option<i64>>,
    /// Expressions waiting for an operand.
    stack: Vec<usize>,
}

impl Evaluator {
    /// The (count, false count) of every region of `function` under `counts`, or `None` when llvm-cov
    /// leaves the function out. MC/DC decisions get (0, 0).
    fn load(&mut self, function: &FunctionMapping, counts: &ProfileCounts) -> Option<Vec<(u64, u64)>> {
        let counters = match counts.lookup(function.name_ref, function.hash) {
            Lookup::Counts(counters) => Some(counters),
            Lookup::HashMismatch => return None,
            Lookup::Unknown => None,
        };
        let first = counters.and_then(|c| c.first().copied()).unwrap_or(0);
        if function.regions.len() == 1 && function.regions[0].count == Counter::Zero && first > 0 {
            return None;
        }
        self.memo.clear();
        self.memo.resize(function.expressions.len(), None);
        let mut out = Vec::with_capacity(function.regions.len());
        for region in &function.regions {
            if region.kind == RegionKind::McdcDecision {
                out.push((0, 0));
                continue;
            }
            let count = self.evaluate(region.count, &function.expressions, counters)?;
            let false_count = self.evaluate(region.false_count, &function.expressions, counters)?;
            out.push((count as u64, false_count as u64));
        }
        Some(out)
    }

    /// The value of a counter: expressions add or subtract in `i64` (wrapping, as llvm-cov's evaluation
    /// does in practice); `None` when it needs a counter the profile does not have or an expression
    /// that does not exist. Without counters (an unknown function) every counter is zero.
    fn evaluate(&mut self, counter: Counter, expressions: &[Expression], counters: Option<&[u64]>) -> Option<i64> {
        let value = |id: u32| match counters {
            Some(c) => c.get(id as usize).map(|&v| v as i64),
            None => Some(0),
        };
        let root = match counter {
            Counter::Zero => return Some(0),
            Counter::Value(id) => return value(id),
            Counter::Expression(id) => id as usize,
        };
        self.stack.clear();
        self.stack.push(root);
        while let Some(&top) = self.stack.last() {
            if self.memo.get(top)?.is_some() {
                self.stack.pop();
                continue;
            }
            let expression = expressions[top];
            let mut operands = [0i64; 2];
            let mut pending = None;
            for (slot, side) in operands.iter_mut().zip([expression.lhs, expression.rhs]) {
                match side {
                    Counter::Zero => {}
                    Counter::Value(id) => *slot = value(id)?,
                    Counter::Expression(id) => match self.memo.get(id as usize)? {
                        Some(v) => *slot = *v,
                        None => pending = pending.or(Some(id as usize)),
                    },
                }
            }
            match pending {
                // More pending expressions than there are means a cycle: malformed.
                Some(_) if self.stack.len() > expressions.len() => return None,
                Some(next) => self.stack.push(next),
                None => {
                    let [lhs, rhs] = operands;
                    self.memo[top] = Some(if expression.add { lhs.wrapping_add(rhs) } else { lhs.wrapping_sub(rhs) });
                    self.stack.pop();
                }
            }
        }
        self.memo[root]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{md5_low, MappingRegion};
    use crate::profile::tests::raw_profile;

    fn region(count: Counter, start: (u32, u32), end: (u32, u32), kind: RegionKind) -> MappingRegion {
        MappingRegion {
            count,
            false_count: Counter::Zero,
            file_id: 0,
            expanded_file_id: 0,
            line_start: start.0,
            col_start: start.1,
            line_end: end.0,
            col_end: end.1,
            kind,
        }
    }

    fn function(name: &str, hash: u64, regions: Vec<MappingRegion>, expressions: Vec<Expression>) -> FunctionMapping {
        FunctionMapping {
            name: name.to_string(),
            name_ref: md5_low(name.as_bytes()),
            hash,
            files: vec![1],
            expressions,
            regions,
        }
    }

    fn mapping(functions: Vec<FunctionMapping>) -> CoverageMapping {
        CoverageMapping { filenames: vec!["/w".into(), "/w/src/a.rs".into(), "/w/src/b.rs".into()], functions }
    }

    fn profile(records: &[(&str, u64, Vec<u64>)]) -> Vec<u8> {
        raw_profile(&records.iter().map(|(n, h, c)| (md5_low(n.as_bytes()), *h, c.clone())).collect::<Vec<_>>())
    }

    #[test]
    fn expressions_give_counts_and_racing_counters_wrap_like_llvm_cov() {
        // body #0; then-branch #1; else-branch #0 - #1; after (#0 - #1) + #1.
        let sub = Expression { add: false, lhs: Counter::Value(0), rhs: Counter::Value(1) };
        let add = Expression { add: true, lhs: Counter::Expression(0), rhs: Counter::Value(1) };
        let f = function(
            "f",
            9,
            vec![
                region(Counter::Value(0), (1, 1), (9, 2), RegionKind::Code),
                region(Counter::Value(1), (2, 5), (3, 6), RegionKind::Code),
                region(Counter::Expression(0), (4, 5), (5, 6), RegionKind::Code),
                region(Counter::Expression(1), (6, 5), (6, 9), RegionKind::Code),
            ],
            vec![sub, add],
        );
        let decoder = Decoder::new(vec![mapping(vec![f])]);
        let export = decoder.export(&[&profile(&[("f", 9, vec![3, 1])])]).expect("decodes");
        let counts: Vec<u64> = export.functions().next().expect("f").regions.iter().map(|r| r.count).collect();
        assert_eq!(counts, [3, 1, 2, 3]);
        assert_eq!(export.functions().next().expect("f").count, 3);

        // A reset while the function ran: #1 counted without #0. The difference wraps, the export
        // clamps it, and the region counts as covered.
        let export = decoder.export(&[&profile(&[("f", 9, vec![0, 1])])]).expect("decodes");
        let counts: Vec<u64> = export.functions().next().expect("f").regions.iter().map(|r| r.count).collect();
        assert_eq!(counts, [0, 1, i64::MAX as u64, 0]);
    }

    #[test]
    fn functions_are_left_out_or_zero_as_llvm_cov_decides() {
        let code = |c| vec![region(c, (1, 1), (2, 2), RegionKind::Code)];
        let decoder = Decoder::new(vec![mapping(vec![
            function("mismatch", 1, code(Counter::Value(0)), vec![]),
            function("unknown", 2, code(Counter::Value(0)), vec![]),
            function("zero_region", 3, code(Counter::Zero), vec![]),
            function("short", 4, code(Counter::Value(5)), vec![]),
            function("kept", 5, code(Counter::Value(0)), vec![]),
            function("kept", 5, code(Counter::Value(0)), vec![]),
        ])]);
        let raw = profile(&[
            ("mismatch", 99, vec![1]),
            ("zero_region", 3, vec![4]),
            ("short", 4, vec![1]),
            ("kept", 5, vec![2]),
        ]);
        let export = decoder.export(&[&raw]).expect("decodes");
        let names: Vec<(&str, u64)> = export.functions().map(|f| (f.name.as_str(), f.count)).collect();
        assert_eq!(names, [("unknown", 0), ("kept", 2)]);
        let file = export.files().next().expect("a.rs");
        assert_eq!(file.filename, "/w/src/a.rs");
    }

    #[test]
    fn sources_restrict_files_and_functions_without_changing_segments() {
        let mut in_b = function("g", 1, vec![region(Counter::Value(0), (1, 1), (3, 2), RegionKind::Code)], vec![]);
        in_b.files = vec![2];
        let in_a = function("f", 1, vec![region(Counter::Value(0), (1, 1), (5, 2), RegionKind::Code)], vec![]);
        let decoder = Decoder::new(vec![mapping(vec![in_a, in_b])]);
        let raw = profile(&[("f", 1, vec![1]), ("g", 1, vec![2])]);
        let all = decoder.export(&[&raw]).expect("decodes");
        assert_eq!(all.files().map(|f| f.filename.as_str()).collect::<Vec<_>>(), ["/w/src/a.rs", "/w/src/b.rs"]);
        let only_b = decoder.with_sources(&["/w/src/b.rs".into()]).export(&[&raw]).expect("decodes");
        assert_eq!(only_b.files().collect::<Vec<_>>(), all.files().skip(1).collect::<Vec<_>>());
        assert_eq!(only_b.functions().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["g"]);
    }

    #[test]
    fn snapshots_of_several_processes_add_up_and_bad_bytes_are_an_error() {
        let f = function("f", 1, vec![region(Counter::Value(0), (1, 1), (5, 2), RegionKind::Code)], vec![]);
        let decoder = Decoder::new(vec![mapping(vec![f])]);
        let one = profile(&[("f", 1, vec![2])]);
        let two = profile(&[("f", 1, vec![3])]);
        let export = decoder.export(&[&one, &two]).expect("decodes");
        assert_eq!(export.functions().next().expect("f").count, 5);
        let err = decoder.export(&[b"garbage"]).expect_err("not a profile");
        assert!(err.to_string().contains("bad magic"), "{err}");
    }

    #[test]
    fn local_function_names_lose_their_file_prefix() {
        assert_eq!(name_without_prefix("/w/a.rs;helper", Some("/w/a.rs")), "helper");
        assert_eq!(name_without_prefix("_RNvCs_3app4main", Some("/w/a.rs")), "_RNvCs_3app4main");
        assert_eq!(name_without_prefix("x", None), "x");
    }
}
