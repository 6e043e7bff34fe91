//! Per-execution coverage and coverage guidance: the [`Probe`] that links the explorer to
//! `cloture-coverage`.
//!
//! Before each execution the LLVM counters are reset; after it (once its handlers finished) they are
//! snapshotted, the snapshot is written where `cargo llvm-cov report` collects profiles (so the whole-run
//! HTML includes every fault run), and decoded in process into line and region sets for the source files
//! that matter, against the coverage mapping of the instrumented executables (read once: this process's
//! own, or the services' from the services file). When a mapping cannot be read, `llvm-profdata` and
//! `llvm-cov` turn each distinct snapshot into lines instead, with a warning. The first reference run is
//! the "before" picture. Guidance: a call site guards the lines after it in its function that the
//! reference run left uncovered (its `Err` and non-200 arms); candidates whose call site still guards
//! uncovered lines run first, discounted when the same fault family was already tried at that site or a
//! fault there covered nothing new; a fault family not yet tried at a site gets a bonus, because an error
//! that leaves through `?` on an already-covered line is a new path that line coverage cannot see.
//! Without a coverage build (or with neither a readable mapping nor llvm tools), the probe says why in
//! the report and exploration runs unguided.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloture_coverage::{
    guarded_lines, minimal_cover, runtime, FunctionSpan, LineCoverage, LlvmTools, Processor, RegionCoverage,
    SnapshotCoverage,
};

use crate::call::{CallKey, CallSite};
use crate::explore::Probe;
use crate::plan::Candidate;
use crate::report::{Counts, CoverageReport, CoverageTiming, FaultLines, FaultReport, FileCoverage, Report};

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
    spans: Vec<FunctionSpan>,
    per_execution: Vec<(String, BTreeMap<String, BTreeSet<u32>>)>,
    per_execution_regions: Vec<(String, RegionCoverage)>,
    covered_by: BTreeMap<(String, u32), String>,
    /// Which (site, fault) and (site, family) were tried, and how many new lines each gave.
    tried: HashMap<(CallSite, String), usize>,
    tried_family: HashSet<(CallSite, &'static str)>,
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
            spans: Vec::new(),
            per_execution: Vec::new(),
            per_execution_regions: Vec::new(),
            covered_by: BTreeMap::new(),
            tried: HashMap::new(),
            tried_family: HashSet::new(),
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

    fn uncovered_guarded(&self, site: &CallSite) -> usize {
        let Some(reference) = &self.reference else { return 0 };
        if !self.relevant(&site.file) {
            return 0;
        }
        let guarded = guarded_lines(reference, &self.spans, &site.file, site.line);
        let covered = self.cumulative.file(&site.file).map(|f| &f.covered);
        guarded.iter().filter(|line| covered.is_none_or(|c| !c.contains(line))).count()
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
        let started = Instant::now();
        let mut snapshots: Vec<Vec<u8>> = Vec::new();
        if self.remote.is_empty() {
            let Some(bytes) = runtime::snapshot() else {
                self.fail("the LLVM profile runtime gave no snapshot".to_string());
                return BTreeMap::new();
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
                        return BTreeMap::new();
                    }
                }
            }
        }
        self.snapshot_time += started.elapsed();
        self.snapshots += 1;
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
        self.per_execution_regions.push((execution_id.to_string(), regions));
        let mut relevant = LineCoverage::default();
        for (file, file_lines) in &lines.files {
            if self.relevant(file) {
                relevant.files.insert(file.clone(), file_lines.clone());
            }
        }
        let new = relevant.newly_covered(&self.cumulative);
        let reference = self.reference.is_none();
        if reference {
            self.reference = Some(relevant.clone());
        } else {
            for (file, new_lines) in &new {
                for line in new_lines {
                    self.covered_by.entry((file.clone(), *line)).or_insert_with(|| execution_id.to_string());
                }
            }
        }
        self.cumulative = self.cumulative.union(&relevant);
        self.per_execution.push((execution_id.to_string(), relevant.covered_sets()));
        if let Some((site, fault, id)) = self.last.take() {
            if id == execution_id {
                let gained = new.values().map(BTreeSet::len).sum();
                self.tried.insert((site.clone(), fault.to_string()), gained);
                self.tried_family.insert((site, fault.family()));
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
        let mut score = self.uncovered_guarded(&call.site) as f64;
        if self.tried.get(&(call.site.clone(), fault.to_string())) == Some(&0) {
            score *= 0.1;
        }
        if self.tried_family.contains(&(call.site.clone(), fault.family())) {
            score *= 0.25;
        } else {
            // A fault family not yet tried at this site may take a path that line coverage cannot show:
            // an error leaving through `?` runs no new line, yet it is a different path.
            score += 0.5;
        }
        score
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
            for (file, after) in &self.cumulative.files {
                let before = reference.file(file);
                let covered_before: Vec<u32> = before.map(|b| b.covered.iter().copied().collect()).unwrap_or_default();
                let newly: Vec<u32> = after.covered.iter().filter(|l| !covered_before.contains(l)).copied().collect();
                section.files.insert(
                    file.clone(),
                    FileCoverage {
                        before: Counts { covered: covered_before.len(), lines: after.instrumented.len() },
                        after: Counts { covered: after.covered.len(), lines: after.instrumented.len() },
                        covered_by: newly
                            .iter()
                            .filter_map(|l| self.covered_by.get(&(file.clone(), *l)).map(|id| (*l, id.clone())))
                            .collect(),
                        newly_covered: newly,
                        lines: after.instrumented.iter().copied().collect(),
                        covered_before,
                    },
                );
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
}
