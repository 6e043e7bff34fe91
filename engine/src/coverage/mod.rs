//! Per-execution coverage and coverage guidance: the [`Probe`] that links the explorer to
//! `cloture-coverage`.
//!
//! Before each execution the LLVM counters are reset; after it (once its handlers finished) they are
//! snapshotted, the snapshot is written where `cargo llvm-cov report` collects profiles (so the whole-run
//! HTML includes every fault run), and decoded in process into line and region sets for the source files
//! that matter, against the coverage mapping of the instrumented executables (read once: this process's
//! own, or the services' from the services file). When a mapping cannot be read, `llvm-profdata` and
//! `llvm-cov` turn each distinct snapshot into lines and regions instead, with a warning. The first
//! reference run is the "before" picture. Guidance (`guidance`): a call site guards the uncovered paths
//! after it in its function, up to the function's next call site — its `Err` arms and the error exits of
//! its `?`s, which region coverage shows even on lines that ran; candidates whose call site still guards
//! uncovered paths run first, weighed by what faults of the same family did so far. The report's
//! coverage section (`section`) gives per file the lines and the regions before and after, the newly
//! covered regions with their first execution and the regions still uncovered on covered lines.
//! Without a coverage build (or with neither a readable mapping nor llvm tools), the probe says why in
//! the report and exploration runs unguided.

mod guidance;
mod section;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloture_coverage::{
    guarded_lines, guarded_paths, minimal_cover, runtime, FunctionSpan, LineCoverage, LlvmTools, Processor,
    RegionCoverage, SnapshotCoverage,
};

use self::guidance::{line_score, region_score, Experience, SiteIndex};
use self::section::{file_coverage, FileRegions};
use crate::call::{CallKey, CallSite};
use crate::explore::Probe;
use crate::plan::Candidate;
use crate::report::{CoverageReport, CoverageTiming, FaultLines, FaultReport, NewRegion, Report};

/// Per-execution coverage for the source files under `paths` (workspace-relative prefixes).
pub struct CoverageProbe {
    processor: Option<Processor>,
    /// Services in other processes whose counters are snapshotted through their control path; empty:
    /// this process's own counters.
    remote: Vec<std::net::SocketAddr>,
    /// The workspace root and the instrumented executables the snapshots come from.
    root: PathBuf,
    objects: Vec<PathBuf>,
    paths: Vec<String>,
    note: Option<String>,
    first: bool,
    reference: Option<LineCoverage>,
    cumulative: LineCoverage,
    /// The regions of the first reference run, and of every execution together.
    reference_regions: Option<RegionCoverage>,
    cumulative_regions: RegionCoverage,
    spans: Vec<FunctionSpan>,
    per_execution: Vec<(String, BTreeMap<String, BTreeSet<u32>>)>,
    per_execution_regions: Vec<(String, RegionCoverage)>,
    /// Per file, the newly covered lines with the first execution covering each.
    covered_by: BTreeMap<String, BTreeMap<u32, String>>,
    /// Per file, the regions newly covered by fault runs with the first execution covering each, in the
    /// order the executions ran.
    regions_covered_by: BTreeMap<String, Vec<NewRegion>>,
    /// What the faults tried so far gained.
    experience: Experience,
    /// The next call site of each site's function, for what a site guards; rebuilt as calls are found
    /// (`score` only reads the probe, so it sits in a cell).
    sites: RefCell<SiteIndex>,
    last: Option<(CallSite, crate::Fault, String)>,
    /// Time spent taking snapshots (the hot path) and turning them into lines.
    pub snapshot_time: Duration,
    pub processing_time: Duration,
    pub snapshots: usize,
}

impl CoverageProbe {
    /// A probe for the sources under `paths` in the workspace at `root`. Never fails: what is missing is
    /// reported as the coverage section's note, and the probe then does nothing.
    pub fn new(root: &Path, paths: Vec<String>) -> CoverageProbe {
        let mut probe = CoverageProbe::new_inactive(paths);
        if !runtime::enabled() {
            probe.note = Some("this build has no coverage instrumentation (run it under cargo llvm-cov, e.g. make faulty): exploration ran without guidance".to_string());
            return probe;
        }
        match std::env::current_exe() {
            Ok(executable) => probe.attach_processor(root, vec![executable]),
            Err(error) => {
                probe.note = Some(format!("cannot find the running executable ({error}): no coverage guidance"));
            }
        }
        probe
    }

    /// A probe for services in other processes listening at `services`, built from the binaries `objects`
    /// with coverage instrumentation (they answer [`crate::server::COVERAGE_PATH`]). Never fails: what is
    /// missing is reported as the coverage section's note.
    pub fn for_processes(
        root: &Path,
        paths: Vec<String>,
        services: Vec<std::net::SocketAddr>,
        objects: Vec<PathBuf>,
    ) -> CoverageProbe {
        let mut probe = CoverageProbe::new_inactive(paths);
        // Services that answer the control path were built with coverage; the others (other languages,
        // builds without instrumentation) are explored without it.
        let services: Vec<std::net::SocketAddr> =
            services.into_iter().filter(|address| remote_snapshot(address).is_ok()).collect();
        if services.is_empty() {
            probe.note = Some(format!(
                "no service answers {} (none was built with coverage, e.g. under cargo llvm-cov): \
                 exploration ran without coverage",
                crate::server::COVERAGE_PATH
            ));
            return probe;
        }
        probe.attach_processor(root, objects);
        probe.remote = services;
        probe
    }

    /// Sets up the snapshot processor for the executables `objects`: decoding in process against their
    /// coverage mappings, or, when a mapping cannot be read, the LLVM tools (with a warning); notes why
    /// neither works.
    fn attach_processor(&mut self, root: &Path, objects: Vec<PathBuf>) {
        self.root = root.to_path_buf();
        self.objects = objects;
        match Processor::in_process(&self.objects, self.root.clone()) {
            Ok(processor) => self.processor = Some(processor.with_sources(source_files(root, &self.paths))),
            Err(error) => {
                tracing::warn!(%error, "coverage mapping not readable: llvm-profdata and llvm-cov turn snapshots into lines");
                self.attach_tools();
            }
        }
    }

    /// The LLVM tools way: `llvm-profdata merge` and `llvm-cov export` per distinct snapshot.
    fn attach_tools(&mut self) {
        self.processor = None;
        match LlvmTools::locate() {
            Ok(tools) => {
                let workdir = self.root.join("target").join("cloture").join("profiles");
                let processor = Processor::new(tools, self.objects.clone(), self.root.clone(), workdir);
                self.processor = Some(processor.with_sources(source_files(&self.root, &self.paths)));
            }
            Err(error) => self.note = Some(format!("{error}: exploration ran without coverage guidance")),
        }
    }

    /// Lines and regions of one execution's snapshots. A snapshot that cannot be decoded in process is
    /// handed to the LLVM tools from then on, with a warning.
    fn process(&mut self, snapshots: &[Vec<u8>]) -> Result<SnapshotCoverage, String> {
        let parts: Vec<&[u8]> = snapshots.iter().map(Vec::as_slice).collect();
        let processor = self.processor.as_mut().ok_or("coverage is off")?;
        match processor.coverage_for_many(&parts) {
            Ok(coverage) => Ok(coverage),
            Err(error) if processor.decodes_in_process() => {
                tracing::warn!(%error, "snapshot not decodable in process: llvm-profdata and llvm-cov take over");
                self.attach_tools();
                let processor = self.processor.as_mut().ok_or_else(|| error.to_string())?;
                processor.coverage_for_many(&parts).map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        }
    }

    /// The regions of the relevant files each execution ran, in execution order (the reference runs
    /// first). Finer than lines: a path that leaves through `?` on a covered line shows as a region.
    pub fn execution_regions(&self) -> &[(String, RegionCoverage)] {
        &self.per_execution_regions
    }

    /// The counters after an execution: this process's (also written for `cargo llvm-cov report`), or each
    /// service's through its control path. `None` when they cannot be had: coverage is then off.
    fn take_snapshots(&mut self, execution_id: &str) -> Option<Vec<Vec<u8>>> {
        let started = Instant::now();
        let mut snapshots: Vec<Vec<u8>> = Vec::new();
        if self.remote.is_empty() {
            let Some(bytes) = runtime::snapshot() else {
                self.fail("the LLVM profile runtime gave no snapshot".to_string());
                return None;
            };
            if let Err(error) = runtime::write_profraw(&bytes, &format!("cloture-{execution_id}")) {
                tracing::warn!(%error, "snapshot not written for cargo llvm-cov report");
            }
            snapshots.push(bytes);
        } else {
            for address in &self.remote {
                match remote_snapshot(address) {
                    Ok(bytes) => snapshots.push(bytes),
                    Err(why) => {
                        self.fail(why);
                        return None;
                    }
                }
            }
        }
        self.snapshot_time += started.elapsed();
        self.snapshots += 1;
        Some(snapshots)
    }

    fn new_inactive(paths: Vec<String>) -> CoverageProbe {
        CoverageProbe {
            processor: None,
            remote: Vec::new(),
            root: PathBuf::new(),
            objects: Vec::new(),
            paths,
            note: None,
            first: true,
            reference: None,
            cumulative: LineCoverage::default(),
            reference_regions: None,
            cumulative_regions: RegionCoverage::default(),
            spans: Vec::new(),
            per_execution: Vec::new(),
            per_execution_regions: Vec::new(),
            covered_by: BTreeMap::new(),
            regions_covered_by: BTreeMap::new(),
            experience: Experience::default(),
            sites: RefCell::new(SiteIndex::default()),
            last: None,
            snapshot_time: Duration::ZERO,
            processing_time: Duration::ZERO,
            snapshots: 0,
        }
    }

    fn relevant(&self, file: &str) -> bool {
        self.paths.iter().any(|prefix| file.starts_with(prefix.as_str()))
    }

    fn fail(&mut self, why: String) {
        tracing::warn!(%why, "coverage disabled");
        self.note = Some(format!("{why}: the rest of the exploration ran without coverage guidance"));
        self.processor = None;
    }

    /// The uncovered paths the call at `site` still guards, when regions of its file are known.
    fn guarded_paths(&self, site: &CallSite, calls: &HashMap<CallKey, FaultReport>) -> Option<usize> {
        let regions = self.cumulative_regions.file(&site.file).filter(|regions| !regions.is_empty())?;
        let until = self.sites.borrow_mut().next(site, calls, &self.spans);
        Some(guarded_paths(regions, &self.spans, &site.file, (site.line, site.column), until).len())
    }

    /// How promising `fault` at `site` is: the uncovered paths the site guards (lines without regions),
    /// weighed by what faults tried so far gained.
    fn score_at(&self, site: &CallSite, fault: crate::Fault, calls: &HashMap<CallKey, FaultReport>) -> f64 {
        let tried = self.experience.of(site, fault);
        match self.guarded_paths(site, calls) {
            Some(paths) => region_score(paths, &tried),
            None => line_score(self.guarded_lines(site), &tried),
        }
    }

    /// The lines after the call at `site` in its function that are still uncovered (without regions).
    fn guarded_lines(&self, site: &CallSite) -> usize {
        let Some(reference) = &self.reference else { return 0 };
        let guarded = guarded_lines(reference, &self.spans, &site.file, site.line);
        let covered = self.cumulative.file(&site.file).map(|f| &f.covered);
        guarded.iter().filter(|line| covered.is_none_or(|c| !c.contains(line))).count()
    }

    /// Takes in one execution's lines and regions: the before picture for the first reference run, the
    /// first execution of each newly covered line and region for the others. Returns the newly covered
    /// lines and how many lines and regions were new.
    fn absorb(
        &mut self,
        execution_id: &str,
        lines: LineCoverage,
        regions: RegionCoverage,
    ) -> (BTreeMap<String, BTreeSet<u32>>, usize) {
        let mut relevant = LineCoverage::default();
        for (file, file_lines) in lines.files {
            if self.relevant(&file) {
                relevant.files.insert(file, file_lines);
            }
        }
        let new = relevant.newly_covered(&self.cumulative);
        let new_regions = regions.newly_covered(&self.cumulative_regions);
        let gained = new.values().map(BTreeSet::len).sum::<usize>() + new_regions.values().map(Vec::len).sum::<usize>();
        if self.reference.is_none() {
            self.reference = Some(relevant.clone());
            self.reference_regions = Some(regions.clone());
        } else {
            for (file, new_lines) in &new {
                let entry = self.covered_by.entry(file.clone()).or_default();
                for line in new_lines {
                    entry.entry(*line).or_insert_with(|| execution_id.to_string());
                }
            }
            for (file, covered) in new_regions {
                let entry = self.regions_covered_by.entry(file).or_default();
                entry.extend(covered.iter().map(|r| NewRegion {
                    start: r.start(),
                    end: r.end(),
                    execution: execution_id.to_string(),
                }));
            }
        }
        self.cumulative = self.cumulative.union(&relevant);
        self.cumulative_regions = self.cumulative_regions.union(&regions);
        self.per_execution.push((execution_id.to_string(), relevant.covered_sets()));
        self.per_execution_regions.push((execution_id.to_string(), regions));
        (new, gained)
    }
}

/// Takes (and resets) the counters of a service in another process through its control path: a small
/// blocking HTTP/1.1 exchange on loopback, made between executions when nothing else runs.
fn remote_snapshot(address: &std::net::SocketAddr) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let fail = |why: String| format!("coverage snapshot of the service at {address}: {why}");
    let mut stream =
        std::net::TcpStream::connect_timeout(address, Duration::from_secs(5)).map_err(|e| fail(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| fail(e.to_string()))?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        crate::server::COVERAGE_PATH
    );
    stream.write_all(request.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| fail(e.to_string()))?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| fail("no HTTP answer".into()))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    if !head.starts_with("HTTP/1.1 200") {
        return Err(fail(format!("answered `{}`", head.lines().next().unwrap_or(""))));
    }
    let body = answer[split + 4..].to_vec();
    if body.is_empty() {
        return Err(fail("empty snapshot".into()));
    }
    Ok(body)
}

fn source_files(root: &Path, prefixes: &[String]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = prefixes.iter().map(|p| root.join(p)).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

impl Probe for CoverageProbe {
    fn before(&mut self) {
        if self.processor.is_none() {
            return;
        }
        // The first reference run keeps what start-up covered, so "before" is the functional test's
        // whole picture; every later execution starts from zero.
        if std::mem::take(&mut self.first) {
            return;
        }
        if self.remote.is_empty() {
            runtime::reset();
        } else {
            // A snapshot resets the service's counters; what it held is discarded.
            for address in self.remote.clone() {
                if let Err(why) = remote_snapshot(&address) {
                    self.fail(why);
                    return;
                }
            }
        }
    }

    fn after(&mut self, execution_id: &str) -> BTreeMap<String, Vec<u32>> {
        if self.processor.is_none() {
            return BTreeMap::new();
        }
        let Some(snapshots) = self.take_snapshots(execution_id) else { return BTreeMap::new() };
        let started = Instant::now();
        let SnapshotCoverage { lines, mut regions } = match self.process(&snapshots) {
            Ok(coverage) => coverage,
            Err(why) => {
                self.fail(why);
                return BTreeMap::new();
            }
        };
        if self.spans.is_empty() {
            if let Some(processor) = &self.processor {
                self.spans = processor.function_spans().to_vec();
            }
        }
        let elapsed = started.elapsed();
        self.processing_time += elapsed;
        tracing::debug!(
            execution_id,
            elapsed_us = elapsed.as_micros() as u64,
            "snapshot turned into lines and regions"
        );
        regions.retain_prefixes(&self.paths);
        let reference = self.reference.is_none();
        let (new, gained) = self.absorb(execution_id, lines, regions);
        if let Some((site, fault, id)) = self.last.take() {
            if id == execution_id {
                self.experience.record(&site, fault, gained);
            }
        }
        if reference {
            BTreeMap::new()
        } else {
            new.into_iter().map(|(file, lines)| (file, lines.into_iter().collect())).collect()
        }
    }

    fn score(&self, candidate: &Candidate, calls: &HashMap<CallKey, FaultReport>) -> f64 {
        let Some(call) = calls.get(&candidate.added) else { return 0.0 };
        let Some(fault) = candidate.faults.get(&candidate.added) else { return 0.0 };
        if !self.relevant(&call.site.file) {
            return 0.0;
        }
        self.score_at(&call.site, *fault, calls)
    }

    fn chosen(&mut self, candidate: &Candidate, calls: &HashMap<CallKey, FaultReport>) {
        self.last = match (calls.get(&candidate.added), candidate.faults.get(&candidate.added)) {
            (Some(call), Some(fault)) => {
                Some((call.site.clone(), *fault, crate::plan::execution_id(&candidate.faults)))
            }
            _ => None,
        };
    }

    fn active(&self) -> bool {
        self.processor.is_some()
    }

    fn progress(&self) -> Option<String> {
        self.processor.as_ref()?;
        Some(format!("coverage {}/{} lines", self.cumulative.covered_count(), self.cumulative.instrumented_count()))
    }

    fn finish(&mut self, report: &mut Report) {
        let ms = |time: Duration| (time.as_secs_f64() * 1e6).round() / 1e3;
        let mut section = CoverageReport {
            guided: false,
            note: self.note.clone(),
            timing: (self.snapshots > 0).then(|| CoverageTiming {
                snapshots: self.snapshots,
                snapshot_ms: ms(self.snapshot_time),
                processing_ms: ms(self.processing_time),
            }),
            ..CoverageReport::default()
        };
        if let Some(reference) = &self.reference {
            section.guided = self.processor.is_some() && report.config.order == crate::plan::Order::Coverage;
            let no_lines = BTreeMap::new();
            for (file, after) in &self.cumulative.files {
                let regions =
                    self.cumulative_regions.file(file).filter(|regions| !regions.is_empty()).map(|after| FileRegions {
                        before: self.reference_regions.as_ref().and_then(|reference| reference.file(file)),
                        after,
                        newly: self.regions_covered_by.get(file).map(Vec::as_slice).unwrap_or_default(),
                    });
                let covered_by = self.covered_by.get(file).unwrap_or(&no_lines);
                section.files.insert(file.clone(), file_coverage(reference.file(file), after, covered_by, regions));
            }
            for execution in &report.executions {
                if execution.new_lines.is_empty() {
                    continue;
                }
                section.fault_lines.push(FaultLines {
                    execution: execution.id.clone(),
                    faults: execution.faults.iter().map(FaultReport::describe).collect(),
                    lines: execution.new_lines.clone(),
                });
            }
            let target = self.cumulative.covered_sets();
            section.minimal_executions = minimal_cover(&self.per_execution, &target);
            section.minimal_executions.dedup();
        }
        report.coverage = Some(section);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ReportConfig, Summary};

    fn empty_report() -> Report {
        Report {
            schema: crate::report::SCHEMA.to_string(),
            name: "t".to_string(),
            labels: BTreeMap::new(),
            config: ReportConfig {
                max_faults: 1,
                order: crate::plan::Order::Coverage,
                reduce: true,
                max_executions: None,
                max_time_ms: None,
                deadline_ms: 1000,
                replay_command: String::new(),
                jobs: 1,
                partition: None,
                note: None,
            },
            summary: Summary::default(),
            executions: Vec::new(),
            vulnerabilities: Vec::new(),
            pruned: Vec::new(),
            call_graph: Default::default(),
            coverage: None,
        }
    }

    #[cfg(not(coverage))]
    #[test]
    fn a_build_without_coverage_explores_unguided_and_says_why() {
        let mut probe = CoverageProbe::new(Path::new("."), vec!["cinema/src/".to_string()]);
        assert!(!probe.active());
        probe.before();
        assert!(probe.after("x").is_empty());
        let mut report = empty_report();
        probe.finish(&mut report);
        let note = report.coverage.and_then(|c| c.note).expect("a note says why there is no coverage");
        assert!(note.contains("no coverage instrumentation") && note.contains("without guidance"), "{note}");
    }

    #[test]
    fn the_coverage_section_reports_what_snapshots_cost_once_any_was_taken() {
        let mut probe = CoverageProbe::new_inactive(vec!["x/".to_string()]);
        let mut report = empty_report();
        probe.finish(&mut report);
        assert_eq!(report.coverage.expect("section").timing, None, "no snapshot, no timing");

        probe.snapshots = 3;
        probe.snapshot_time = Duration::from_micros(1_234);
        probe.processing_time = Duration::from_nanos(2_345_678);
        let mut report = empty_report();
        probe.finish(&mut report);
        let timing = report.coverage.expect("section").timing.expect("timing");
        assert_eq!(timing, CoverageTiming { snapshots: 3, snapshot_ms: 1.234, processing_ms: 2.346 });
        let json = serde_json::to_value(timing).expect("serialises");
        assert_eq!(json, serde_json::json!({"snapshots": 3, "snapshot_ms": 1.234, "processing_ms": 2.346}));
    }

    #[test]
    fn services_that_do_not_answer_the_control_path_give_a_note_not_an_error() {
        // A closed port: nothing answers.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut probe = CoverageProbe::for_processes(Path::new("."), vec!["x/".to_string()], vec![closed], Vec::new());
        assert!(!probe.active());
        let mut report = empty_report();
        probe.finish(&mut report);
        let note = report.coverage.and_then(|c| c.note).expect("note");
        assert!(note.contains("no service answers"), "{note}");
    }

    const FILE: &str = "cinema/src/users/recitation.rs";

    fn lines(instrumented: &[u32], covered: &[u32]) -> LineCoverage {
        let file = cloture_coverage::FileLines {
            instrumented: instrumented.iter().copied().collect(),
            covered: covered.iter().copied().collect(),
        };
        LineCoverage { files: [(FILE.to_string(), file)].into_iter().collect() }
    }

    /// Regions of the recitation handler around its two calls: (line, start column, end column, count).
    fn regions(counts: &[(u32, u32, u32, u64)]) -> RegionCoverage {
        let regions = counts
            .iter()
            .map(|&(line, col_start, col_end, count)| cloture_coverage::CoveredRegion {
                line_start: line,
                col_start,
                line_end: line,
                col_end,
                kind: cloture_coverage::RegionKind::Code,
                count,
                false_count: 0,
            })
            .collect();
        RegionCoverage { files: [(FILE.to_string(), regions)].into_iter().collect() }
    }

    /// The fault-free run: both calls ran; the connect arms (23, 34) and the `?` exits (24:23, 26:49,
    /// 35:31, 37:54) did not.
    fn reference_regions(covered_after_faults: &[(u32, u32)]) -> RegionCoverage {
        let mut counts = vec![
            (22, 39, 42, 1),
            (23, 13, 102, 0),
            (24, 18, 23, 1),
            (24, 23, 24, 0),
            (26, 9, 17, 1),
            (26, 49, 50, 0),
            (33, 47, 50, 1),
            (34, 21, 107, 0),
            (35, 26, 31, 1),
            (35, 31, 32, 0),
            (37, 39, 47, 1),
            (37, 54, 55, 0),
        ];
        for (line, col, _, count) in &mut counts {
            if covered_after_faults.contains(&(*line, *col)) {
                *count = 1;
            }
        }
        regions(&counts)
    }

    fn call(key: u64, line: u32, column: u32, to: &str) -> (CallKey, FaultReport) {
        let site = CallSite { file: FILE.into(), line, column };
        let report = FaultReport {
            key: CallKey(key),
            from: "users".into(),
            to: to.into(),
            method: "GET".into(),
            path: "/".into(),
            site,
            fault: crate::Fault::Connect,
        };
        (CallKey(key), report)
    }

    fn probe_after_reference() -> CoverageProbe {
        let mut probe = CoverageProbe::new_inactive(vec!["cinema/src/".to_string()]);
        probe.spans = vec![FunctionSpan {
            file: FILE.into(),
            name: "user_bookings::{closure#0}".into(),
            start_line: 16,
            end_line: 43,
        }];
        let covered = [22, 24, 26, 33, 35, 37];
        probe.absorb("reference", lines(&[22, 23, 24, 26, 33, 34, 35, 37], &covered), reference_regions(&[]));
        probe
    }

    #[test]
    fn the_report_carries_region_counts_and_the_regions_fault_runs_newly_covered() {
        let mut probe = probe_after_reference();
        let covered = [22, 24, 26, 33, 35, 37];
        let (new_lines, gained) =
            probe.absorb("e1", lines(&[22, 23, 24, 26, 33, 34, 35, 37], &covered), reference_regions(&[(26, 49)]));
        assert!(new_lines.is_empty(), "the `?` exit ran no new line");
        assert_eq!(gained, 1, "but it is a new region");
        let mut report = empty_report();
        probe.finish(&mut report);
        let summary = report.terminal_summary();
        assert!(
            summary.contains(&format!("coverage {FILE}: 6/8 (75.0%) → 6/8 (75.0%); regions 6/12 → 7/12")),
            "a file whose regions grew is in the summary, even when its lines did not: {summary}"
        );
        let json = serde_json::to_value(report.coverage.expect("section")).expect("serialises");
        let file = &json["files"][FILE];
        assert_eq!(
            file["regions"],
            serde_json::json!({"before": {"covered": 6, "total": 12}, "after": {"covered": 7, "total": 12}})
        );
        assert_eq!(
            file["newly_covered_regions"],
            serde_json::json!([{"start": [26, 49], "end": [26, 50], "execution": "e1"}])
        );
        assert_eq!(
            file["uncovered_regions"],
            serde_json::json!([
                {"start": [24, 23], "end": [24, 24]},
                {"start": [35, 31], "end": [35, 32]},
                {"start": [37, 54], "end": [37, 55]}
            ]),
            "the `?` exits never taken, on lines that ran; not the connect arms, whose lines never ran"
        );
    }

    #[test]
    fn guidance_scores_a_call_by_the_uncovered_paths_up_to_the_next_call() {
        let mut probe = probe_after_reference();
        let calls: HashMap<CallKey, FaultReport> = [call(1, 22, 39, "bookings"), call(2, 33, 47, "movies")].into();
        let (bookings, movies) = (calls[&CallKey(1)].site.clone(), calls[&CallKey(2)].site.clone());
        let status = crate::Fault::Status(500);
        assert_eq!(probe.score_at(&bookings, status, &calls), 3.0, "the connect arm and two `?` exits");
        assert_eq!(probe.score_at(&movies, status, &calls), 3.0);
        // A connect fault at bookings runs its arm.
        probe.experience.record(&bookings, crate::Fault::Connect, 1);
        probe.absorb("e1", lines(&[22, 23], &[22, 23]), reference_regions(&[(23, 13)]));
        assert_eq!(probe.score_at(&bookings, status, &calls), 2.0);
        assert_eq!(probe.score_at(&bookings, crate::Fault::Connect, &calls), 2.0 * 0.25, "its family was tried here");
        assert_eq!(probe.score_at(&movies, crate::Fault::Connect, &calls), 3.0 * 0.5, "and elsewhere");
        assert!(probe.score_at(&movies, status, &calls) > probe.score_at(&movies, crate::Fault::Connect, &calls));
    }

    #[test]
    fn without_regions_guidance_falls_back_to_uncovered_lines() {
        let mut probe = CoverageProbe::new_inactive(vec!["cinema/src/".to_string()]);
        probe.spans = vec![FunctionSpan { file: FILE.into(), name: "handler".into(), start_line: 16, end_line: 43 }];
        probe.absorb("reference", lines(&[22, 23, 24, 26], &[22, 24]), RegionCoverage::default());
        let calls: HashMap<CallKey, FaultReport> = [call(1, 22, 39, "bookings")].into();
        let site = calls[&CallKey(1)].site.clone();
        assert_eq!(
            probe.score_at(&site, crate::Fault::Status(500), &calls),
            2.0 + 0.5,
            "lines 23 and 26, untried family"
        );
        let mut report = empty_report();
        probe.finish(&mut report);
        assert!(report.coverage.expect("section").files[FILE].regions.is_none());
    }
}
