//! How long `cloture::html::render` takes as a report grows: a synthetic report is built for each number of
//! call sites (1,000 / 2,000 / 4,000 unless sizes are given on the command line), with services, executions,
//! vulnerabilities, pruned fault sets and coverage files in proportion, and rendered a few times.
//!
//! `cargo bench -p cloture --bench render [-- SITES...]`. The report is built as `report.json` text (schema
//! `cloture.report/1`) and parsed, so it stays valid whatever Rust types the report uses. Set
//! `CLOTURE_BENCH_HTML` to a directory to keep each rendered page there as `render-SITES.html`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloture::report::Report;
use serde_json::{json, Value};

/// Renders of each size; the fastest and the median are printed.
const ROUNDS: usize = 5;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 2000, 4000] } else { sizes };
    println!("## HTML rendering (synthetic reports, {ROUNDS} renders each)");
    for sites in sizes {
        let (report, sources) = synthetic(sites);
        let mut times = Vec::with_capacity(ROUNDS);
        let mut page = String::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            page = std::hint::black_box(cloture::html::render(&report, &sources));
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{sites:>6} call sites, {:>5} services, {:>5} executions, {:>4} vulnerabilities, {:>4} files: \
             fastest {:>9}, median {:>9}, page {:>6.1} MB",
            (sites / SITES_PER_SERVICE).max(2) + 1,
            report.executions.len(),
            report.vulnerabilities.len(),
            sources.len(),
            millis(times[0]),
            millis(times[ROUNDS / 2]),
            page.len() as f64 / 1e6
        );
        if let Ok(dir) = std::env::var("CLOTURE_BENCH_HTML") {
            std::fs::write(format!("{dir}/render-{sites}.html"), &page).expect("the page can be kept");
        }
    }
}

fn millis(time: Duration) -> String {
    format!("{:.1} ms", time.as_secs_f64() * 1000.0)
}

const SITES_PER_SERVICE: usize = 10;
const SITES_PER_FILE: usize = 10;
const SITES_PER_VULNERABILITY: usize = 20;
const EXECUTIONS_PER_SITE: usize = 3;
/// Source lines per call site: the call, the handling of its answer, a blank line.
const LINES_PER_SITE: u32 = 8;
/// Lines of a file before its first call site and after its last.
const PREAMBLE: u32 = 10;

fn service(index: usize) -> String {
    format!("svc{index:04}")
}

fn file(index: usize) -> String {
    format!("services/gen/src/f{index:04}.rs")
}

/// Call site `j`: in file `j % files`, [`LINES_PER_SITE`] lines below the previous site of that file.
fn site(j: usize, files: usize) -> (String, u32) {
    let line = PREAMBLE + LINES_PER_SITE * (j / files) as u32;
    (format!("{}:{line}:9", file(j % files)), line)
}

fn execution_id(e: usize) -> String {
    format!("{e:012x}")
}

/// Line `n` of source file `f` (without its end of line).
fn source_line(f: usize, n: u32) -> String {
    format!("    let value_{n} = call(\"<{f}>\", {n}).await?;")
}

/// A report with `sites` call sites and everything else in proportion, and the text of its source files.
fn synthetic(sites: usize) -> (Report, BTreeMap<String, String>) {
    let services = (sites / SITES_PER_SERVICE).max(2);
    let files = (sites / SITES_PER_FILE).max(1);
    let n_executions = EXECUTIONS_PER_SITE * sites;
    let (nodes, edges) = call_graph(sites, services, files);
    let executions: Vec<Value> = (0..n_executions).map(|e| execution(e, sites, services, files)).collect();
    let failed = (0..n_executions).filter(|e| e.is_multiple_of(7)).count();
    let vulnerabilities: Vec<Value> =
        (0..n_executions / SITES_PER_VULNERABILITY).map(|v| vulnerability(v, sites, files)).collect();
    let pruned: Vec<Value> = (0..sites)
        .map(|j| {
            let reason = ["dominated", "observed", "unreachable"][j % 3];
            json!({"id": format!("p{j:011x}"), "faults": [format!("status:500@{}", site(j, files).0)], "reason": reason})
        })
        .collect();
    let lines = PREAMBLE + LINES_PER_SITE * sites.div_ceil(files) as u32 + PREAMBLE;
    let coverage: serde_json::Map<String, Value> =
        (0..files).map(|f| (file(f), file_coverage(f, lines, sites, files))).collect();
    let report = json!({
        "schema": cloture::report::SCHEMA,
        "name": format!("synthetic::{sites}_sites"),
        "labels": {"edition": "synthetic", "sites": sites.to_string()},
        "config": {"max_faults": 2, "order": "coverage", "reduce": true, "max_executions": null,
                   "max_time_ms": null, "deadline_ms": 10000, "replay_command": "CLOTURE_REPLAY={id} cargo test",
                   "jobs": 2},
        "summary": {"executions": n_executions, "passed": n_executions - failed, "failed": failed,
                    "pruned": pruned.len(), "duration_ms": 123456, "complete": true, "nondeterministic": [],
                    "vulnerabilities": vulnerabilities.len()},
        "executions": executions,
        "vulnerabilities": vulnerabilities,
        "pruned": pruned,
        "call_graph": {"nodes": nodes, "edges": edges},
        "coverage": {"guided": true, "files": coverage, "fault_lines": [],
                     "minimal_executions": (0..n_executions).step_by(10).map(execution_id).collect::<Vec<_>>()},
    });
    let report: Report = serde_json::from_value(report).expect("the synthetic report follows the schema");
    let sources = (0..files)
        .map(|f| {
            let text: String = (1..=lines).map(|n| source_line(f, n) + "\n").collect();
            (file(f), text)
        })
        .collect();
    (report, sources)
}

/// The test and services `svc0000..`, each call site in one of them. The test's sites call `svc0000`; a
/// service's sites call the two services below it in a binary tree, so services sit at several depths; every
/// 17th site calls back up; every tenth service is called by nobody.
fn call_graph(sites: usize, services: usize, files: usize) -> (Vec<Value>, Vec<Value>) {
    let mut nodes = vec![json!({"id": 0, "kind": "service", "name": "test"})];
    nodes.extend((0..services).map(|s| json!({"id": s + 1, "kind": "service", "name": service(s)})));
    let mut edges = Vec::new();
    let test_sites = (sites / 100).max(1);
    for j in 0..sites {
        let id = services + 1 + j;
        let (owner, callee) = if j < test_sites {
            (0, 0)
        } else {
            let s = j % services;
            let mut callee = if j.is_multiple_of(17) { s / 2 } else { (2 * s + 1 + j % 2) % services };
            if callee % 10 == 9 {
                callee -= 1;
            }
            (s + 1, callee)
        };
        let owner_name = if owner == 0 { "test".to_string() } else { service(owner - 1) };
        let faults = if j.is_multiple_of(3) { 0 } else { j % 4 + 1 };
        let failing = if faults > 0 && j.is_multiple_of(7) { 1 } else { 0 };
        nodes.push(json!({"id": id, "kind": "site", "service": owner_name, "site": site(j, files).0,
                          "stats": {"calls": 1 + j % 5, "faults_injected": faults, "failing_executions": failing}}));
        edges.push(json!({"from": owner, "to": id, "kind": "contains"}));
        edges.push(
            json!({"from": id, "to": callee + 1, "kind": "calls", "method": "GET", "path": format!("/items/{j}")}),
        );
    }
    (nodes, edges)
}

/// Execution `e` faults call site `e % sites` (and, every fifth, the next one too); every seventh fails.
fn execution(e: usize, sites: usize, services: usize, files: usize) -> Value {
    let fault = |j: usize| {
        json!({"key": format!("{:016x}", j + 1), "from": service(j % services), "to": service((j + 1) % services),
               "method": "GET", "path": format!("/items/{j}"), "site": site(j, files).0, "fault": "status:500"})
    };
    let j = e % sites;
    let mut faults = vec![fault(j)];
    if e % 5 == 4 {
        faults.push(fault((j + 1) % sites));
    }
    let mut execution = json!({
        "id": execution_id(e), "reference": false, "faults": faults, "duration_ms": 1.5 + (e % 10) as f64,
        "calls": 3 + e % 4, "replay": format!("CLOTURE_REPLAY={} cargo test", execution_id(e)),
        "outcome": if e.is_multiple_of(7) { "fail" } else { "pass" },
    });
    if e.is_multiple_of(7) {
        let (location, _) = site((j + 1) % sites, files);
        execution["failure"] = json!({"class": "crash", "message": format!("service crashed: item {j} <missing>"),
                                      "location": location, "service": service(j % services)});
    }
    if e % 2 == 1 {
        execution["new_lines"] = json!({ file(j % files): [site(j, files).1 + 1, site(j, files).1 + 2] });
    }
    if e % 14 == 7 {
        execution["minimal_subset"] = json!(execution_id(e - 7));
    }
    execution
}

/// Vulnerability `v` groups the failing executions among `20v .. 20v + 20`.
fn vulnerability(v: usize, sites: usize, files: usize) -> Value {
    let members: Vec<usize> =
        (v * SITES_PER_VULNERABILITY..(v + 1) * SITES_PER_VULNERABILITY).filter(|e| e.is_multiple_of(7)).collect();
    let first = members.first().copied().unwrap_or(v * SITES_PER_VULNERABILITY);
    json!({
        "id": format!("V{}", v + 1), "class": "crash", "title": format!("svc crashes when item {v} answers status:500"),
        "family": "status", "faults": ["status:500"], "callees": [format!("svc<{v}>")],
        "call_sites": members.iter().map(|&e| site(e % sites, files).0).collect::<Vec<_>>(),
        "locations": members.iter().map(|&e| site((e + 1) % sites, files).0).collect::<Vec<_>>(),
        "message": format!("service crashed: item {first} <missing>"),
        "executions": members.iter().map(|&e| execution_id(e)).collect::<Vec<_>>(),
        "replay": format!("CLOTURE_REPLAY={} cargo test", execution_id(first)),
    })
}

/// Three lines of four instrumented; the preamble covered by the test; below each call site, the lines that
/// handle its answer newly covered, each by one of the site's executions. Regions: on each handling line,
/// the `?` exit first covered by the site's next execution (marked, with a label), and the call never run
/// (marked), besides the regions counted.
fn file_coverage(f: usize, lines: u32, sites: usize, files: usize) -> Value {
    let instrumented: Vec<u32> = (1..=lines).filter(|n| n % 4 != 0).collect();
    let before: Vec<u32> = instrumented.iter().copied().filter(|&n| n <= PREAMBLE).collect();
    let mut by = serde_json::Map::new();
    let (mut new_regions, mut uncovered) = (Vec::new(), Vec::new());
    for j in (f..sites).step_by(files) {
        let line = site(j, files).1;
        for (k, handling) in (line + 1..line + 5).filter(|n| n % 4 != 0).enumerate() {
            by.insert(handling.to_string(), json!(execution_id(j + k * sites)));
            // `    let value_N = call("<F>", N).await?;`: the `?` is the last column but one.
            let text = source_line(f, handling);
            let (question, call) = (text.len() as u32 - 1, text.find("call").expect("a call") as u32 + 1);
            let next = execution_id(j + ((k + 1) % EXECUTIONS_PER_SITE) * sites);
            new_regions
                .push(json!({"start": [handling, question], "end": [handling, question + 1], "execution": next}));
            uncovered.push(json!({"start": [handling, call], "end": [handling, call + 4]}));
        }
    }
    let newly: Vec<u32> = by.keys().map(|line| line.parse().expect("a line number")).collect();
    let regions = 4 * instrumented.len();
    json!({
        "before": {"covered": before.len(), "lines": instrumented.len()},
        "after": {"covered": before.len() + newly.len(), "lines": instrumented.len()},
        "newly_covered": newly, "lines": instrumented, "covered_before": before, "covered_by": by,
        "regions": {"before": {"covered": 4 * before.len(), "total": regions},
                    "after": {"covered": 4 * before.len() + new_regions.len(), "total": regions}},
        "newly_covered_regions": new_regions, "uncovered_regions": uncovered,
    })
}
