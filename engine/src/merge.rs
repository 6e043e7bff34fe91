//! Merging reports: the partitions of one exploration (`--partition k/n`, run on several machines) united
//! into one report, as one run over the whole plan would have written it.
//!
//! Executions are united by id (the reference runs are taken once, from the first report), the summary is
//! recomputed, vulnerabilities are regrouped, call graphs and coverage (lines and regions) united. One reconciliation: a
//! failing execution whose faults strictly contain those of a failure that another partition found is
//! listed as pruned (`dominated`) — its partition did not know that failure, a single run would have, and
//! would not have run it. Reports of different systems (name, labels, schema) or of different plans
//! (`max_faults`, `reduce`) are refused. Pure: reading and writing the files is the caller's.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::call::CallKey;
use crate::graph::{Edge, EdgeData, GraphData, Node, NodeData, SiteStats};
use crate::plan::{execution_id, FaultSet, Partition, PruneReason, Shares};
use crate::report::{
    group_vulnerabilities, Counts, CoverageReport, CoverageTiming, ExecutionReport, FaultReport, FileCoverage,
    NewRegion, Outcome, PrunedReport, RegionChange, RegionCounts, Report, SourceRange, Summary, SCHEMA,
};
use crate::Error;

/// Unites `reports` (the first one's settings win where they may differ, e.g. budgets).
pub fn merge(reports: &[Report]) -> Result<Report, Error> {
    let Some(first) = reports.first() else {
        return Err(Error::CannotMerge { index: 0, why: "there is no report to merge".to_string() });
    };
    for (index, report) in reports.iter().enumerate() {
        compatible(index, report, first)?;
        once(index, report, &reports[..index])?;
    }
    let (mut executions, ran_by) = unite_executions(reports, first);
    let dominated = dominated_failures(&executions, &ran_by);
    let mut pruned: Vec<PrunedReport> = Vec::new();
    executions.retain(|e| {
        let Some(_) = dominated.get(&e.id) else { return true };
        let faults = e.faults.iter().map(FaultReport::describe_call).collect();
        pruned.push(PrunedReport { id: e.id.clone(), faults, reason: PruneReason::Dominated });
        false
    });
    // A dominated failure's own failing subset stands for it.
    let stand_in = |id: &str| -> String {
        let mut id = id.to_string();
        while let Some(by) = dominated.get(&id) {
            id = by.clone();
        }
        id
    };
    for execution in &mut executions {
        if let Some(subset) = &execution.minimal_subset {
            execution.minimal_subset = Some(stand_in(subset));
        }
    }
    let executed: HashSet<&str> = executions.iter().map(|e| e.id.as_str()).collect();
    for candidate in reports.iter().flat_map(|r| &r.pruned) {
        if !executed.contains(candidate.id.as_str()) && !pruned.iter().any(|p| p.id == candidate.id) {
            pruned.push(candidate.clone());
        }
    }

    let vulnerabilities = group_vulnerabilities(&executions, &first.config.replay_command);
    let stopped: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.summary.stopped.as_ref().map(|why| match &r.config.partition {
                Some(partition) => format!("partition {partition}: {why}"),
                None => why.clone(),
            })
        })
        .collect();
    let mut nondeterministic: Vec<CallKey> =
        reports.iter().flat_map(|r| r.summary.nondeterministic.iter().copied()).collect();
    nondeterministic.sort();
    nondeterministic.dedup();
    let summary = Summary {
        pruned: pruned.len(),
        duration_ms: reports.iter().map(|r| r.summary.duration_ms).max().unwrap_or_default(),
        complete: reports.iter().all(|r| r.summary.complete),
        stopped: (!stopped.is_empty()).then(|| stopped.join("; ")),
        nondeterministic,
        ..Summary::of(&executions, vulnerabilities.len())
    };
    let mut config = first.config.clone();
    config.partition = partitions(reports);
    config.jobs = reports.iter().map(|r| r.config.jobs).max().unwrap_or(1);
    config.note = joined(reports.iter().map(|r| r.config.note.clone()));
    let coverage = merge_coverage(reports, &|id| stand_in(id), &executed);
    Ok(Report {
        schema: SCHEMA.to_string(),
        name: first.name.clone(),
        labels: first.labels.clone(),
        config,
        summary,
        executions,
        vulnerabilities,
        pruned,
        call_graph: merge_graphs(reports.iter().map(|r| &r.call_graph)),
        coverage,
    })
}

/// Whether report `index` can be merged with the first: same schema, system and plan.
fn compatible(index: usize, report: &Report, first: &Report) -> Result<(), Error> {
    if report.schema != SCHEMA {
        return Err(Error::CannotMerge { index, why: format!("schema `{}` is not `{SCHEMA}`", report.schema) });
    }
    let differs = |what: &str, theirs: String, ours: String| {
        Err(Error::CannotMerge { index, why: format!("it has {what} {theirs} where the first report has {ours}") })
    };
    if report.name != first.name {
        return differs("name", format!("`{}`", report.name), format!("`{}`", first.name));
    }
    if report.labels != first.labels {
        return differs("labels", labels(report), labels(first));
    }
    if report.config.max_faults != first.config.max_faults {
        return differs("max_faults", report.config.max_faults.to_string(), first.config.max_faults.to_string());
    }
    if report.config.reduce != first.config.reduce {
        return differs("reduce", report.config.reduce.to_string(), first.config.reduce.to_string());
    }
    Ok(())
}

/// Whether report `index` covers a share of the plan that no earlier report covers: a share merged twice
/// would count its calls twice. A report of the whole plan covers every share.
fn once(index: usize, report: &Report, earlier: &[Report]) -> Result<(), Error> {
    let overlap = |a: &Report, b: &Report| match (&a.config.partition, &b.config.partition) {
        (Some(ours), Some(theirs)) => ours.0.iter().find(|share| theirs.0.contains(share)).map(ToString::to_string),
        _ => Some("the whole plan".to_string()),
    };
    for (other, earlier) in earlier.iter().enumerate() {
        if let Some(share) = overlap(report, earlier) {
            let why = format!("it covers {share}, as report {} does: each share of the plan is merged once", other + 1);
            return Err(Error::CannotMerge { index, why });
        }
    }
    Ok(())
}

/// Executions by id (the reference runs once, from the first report), and which reports ran each.
fn unite_executions(reports: &[Report], first: &Report) -> (Vec<ExecutionReport>, HashMap<String, BTreeSet<usize>>) {
    let mut executions: Vec<ExecutionReport> = first.executions.iter().filter(|e| e.reference).cloned().collect();
    let mut ran_by: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for (index, report) in reports.iter().enumerate() {
        for execution in report.executions.iter().filter(|e| !e.reference) {
            let reports = ran_by.entry(execution.id.clone()).or_default();
            if reports.is_empty() {
                executions.push(execution.clone());
            }
            reports.insert(index);
        }
    }
    (executions, ran_by)
}

/// Failures dominated by a failure another partition found, each with the id of the one dominating it.
/// A report lists the faults an execution injected; its id names the fault set it planned, which holds
/// more when a planned fault's call never happened. A failure whose planned set is what it injected
/// dominates every other execution injecting at least those faults.
fn dominated_failures(
    executions: &[ExecutionReport],
    ran_by: &HashMap<String, BTreeSet<usize>>,
) -> BTreeMap<String, String> {
    let injected = |e: &ExecutionReport| -> FaultSet { e.faults.iter().map(|f| (f.key, f.fault)).collect() };
    let failures: Vec<(&ExecutionReport, FaultSet)> =
        executions.iter().filter(|e| !e.reference && e.outcome == Outcome::Fail).map(|e| (e, injected(e))).collect();
    let mut dominated = BTreeMap::new();
    for (execution, faults) in &failures {
        let elsewhere = |other: &ExecutionReport| ran_by[&other.id].iter().any(|r| !ran_by[&execution.id].contains(r));
        let by = failures.iter().find(|(other, subset)| {
            other.id != execution.id
                && execution_id(subset) == other.id
                && subset.iter().all(|(key, fault)| faults.get(key) == Some(fault))
                && elsewhere(other)
        });
        if let Some((other, _)) = by {
            dominated.insert(execution.id.clone(), other.id.clone());
        }
    }
    dominated
}

fn labels(report: &Report) -> String {
    let pairs: Vec<String> = report.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Distinct texts, in order, joined with `; `.
fn joined(texts: impl Iterator<Item = Option<String>>) -> Option<String> {
    let mut distinct: Vec<String> = Vec::new();
    for text in texts.flatten() {
        if !distinct.contains(&text) {
            distinct.push(text);
        }
    }
    (!distinct.is_empty()).then(|| distinct.join("; "))
}

/// The share of the plan the merged reports cover: `None` for the whole plan (every partition of `n`, or
/// a report of the whole plan among them), else the partitions present, e.g. `1/3,2/3`.
fn partitions(reports: &[Report]) -> Option<Shares> {
    let mut shares: Vec<Partition> = Vec::new();
    for report in reports {
        for share in &report.config.partition.as_ref()?.0 {
            if !shares.contains(share) {
                shares.push(*share);
            }
        }
    }
    shares.sort_by_key(|share| (share.n(), share.k()));
    let whole = shares.first().is_some_and(|first| {
        (1..=first.n()).all(|k| Partition::new(k, first.n()).is_some_and(|share| shares.contains(&share)))
    });
    (!whole).then_some(Shares(shares))
}

/// The call graphs as one: nodes identified by kind and name (services) or service and site (call
/// sites), their stats summed (calls of the reference runs, which every partition makes, are counted once
/// per report), edges united.
pub fn merge_graphs<'a>(graphs: impl Iterator<Item = &'a GraphData>) -> GraphData {
    fn identity(node: &Node) -> (&'static str, String, String) {
        match node {
            Node::Service { name } => ("service", name.clone(), String::new()),
            Node::Site { service, site } => ("site", service.clone(), site.to_string()),
        }
    }
    let mut merged = GraphData::default();
    let mut ids: HashMap<(&'static str, String, String), usize> = HashMap::new();
    for graph in graphs {
        let mut renumbered: HashMap<usize, usize> = HashMap::new();
        for node in &graph.nodes {
            let id = *ids.entry(identity(&node.node)).or_insert_with(|| {
                merged.nodes.push(NodeData { id: merged.nodes.len(), node: node.node.clone(), stats: None });
                merged.nodes.len() - 1
            });
            renumbered.insert(node.id, id);
            if let Some(stats) = &node.stats {
                let total = merged.nodes[id].stats.get_or_insert_with(SiteStats::default);
                total.calls += stats.calls;
                total.faults_injected += stats.faults_injected;
                total.failing_executions += stats.failing_executions;
            }
        }
        for edge in &graph.edges {
            let (Some(&from), Some(&to)) = (renumbered.get(&edge.from), renumbered.get(&edge.to)) else { continue };
            let same_kind = |other: &EdgeData| {
                matches!(
                    (&other.edge, &edge.edge),
                    (Edge::Contains, Edge::Contains) | (Edge::Calls { .. }, Edge::Calls { .. })
                )
            };
            if !merged.edges.iter().any(|other| other.from == from && other.to == to && same_kind(other)) {
                merged.edges.push(EdgeData { from, to, edge: edge.edge.clone() });
            }
        }
    }
    merged
}

/// The coverage sections as one: "before" from the first report that has the file, newly covered lines
/// and their first executions united, the minimal executions united (an execution dropped as dominated
/// replaced by the failure that stands in for it), the timings summed.
fn merge_coverage(
    reports: &[Report],
    stand_in: &dyn Fn(&str) -> String,
    executed: &HashSet<&str>,
) -> Option<CoverageReport> {
    let sections: Vec<&CoverageReport> = reports.iter().filter_map(|r| r.coverage.as_ref()).collect();
    if sections.is_empty() {
        return None;
    }
    let mut merged = CoverageReport {
        guided: sections.iter().all(|s| s.guided),
        note: joined(sections.iter().map(|s| s.note.clone())),
        timing: sections.iter().filter_map(|s| s.timing).reduce(|a, b| CoverageTiming {
            snapshots: a.snapshots + b.snapshots,
            snapshot_ms: a.snapshot_ms + b.snapshot_ms,
            processing_ms: a.processing_ms + b.processing_ms,
        }),
        ..CoverageReport::default()
    };
    let paths: BTreeSet<&String> = sections.iter().flat_map(|s| s.files.keys()).collect();
    for path in paths {
        let files: Vec<&FileCoverage> = sections.iter().filter_map(|s| s.files.get(path)).collect();
        let base = files[0];
        let before: BTreeSet<u32> = base.covered_before.iter().copied().collect();
        let lines: BTreeSet<u32> = files.iter().flat_map(|f| f.lines.iter().copied()).collect();
        let covered: BTreeSet<u32> =
            files.iter().flat_map(|f| f.covered_before.iter().chain(&f.newly_covered).copied()).collect();
        let newly: Vec<u32> = covered.difference(&before).copied().collect();
        let mut covered_by = BTreeMap::new();
        for file in &files {
            for (line, id) in &file.covered_by {
                if newly.contains(line) {
                    covered_by.entry(*line).or_insert_with(|| stand_in(id));
                }
            }
        }
        let (regions, newly_covered_regions, uncovered_regions) = merge_regions(&files, stand_in);
        merged.files.insert(
            path.clone(),
            FileCoverage {
                before: base.before,
                after: Counts { covered: covered.len(), lines: lines.len() },
                newly_covered: newly,
                lines: lines.into_iter().collect(),
                covered_before: base.covered_before.clone(),
                covered_by,
                regions,
                newly_covered_regions,
                uncovered_regions,
            },
        );
    }
    for section in &sections {
        for lines in &section.fault_lines {
            if executed.contains(lines.execution.as_str())
                && !merged.fault_lines.iter().any(|l| l.execution == lines.execution)
            {
                merged.fault_lines.push(lines.clone());
            }
        }
        for id in &section.minimal_executions {
            let id = stand_in(id);
            if !merged.minimal_executions.contains(&id) {
                merged.minimal_executions.push(id);
            }
        }
    }
    Some(merged)
}

/// One file's regions in several reports as one: "before" from the first report with regions (every
/// partition runs the same reference runs), the newly covered regions united (the first report's
/// execution first, a dominated one replaced by its stand-in), still uncovered what no report covered.
fn merge_regions(
    files: &[&FileCoverage],
    stand_in: &dyn Fn(&str) -> String,
) -> (Option<RegionChange>, Vec<NewRegion>, Vec<SourceRange>) {
    let Some(base) = files.iter().find_map(|f| f.regions) else { return (None, Vec::new(), Vec::new()) };
    let mut newly: BTreeMap<SourceRange, String> = BTreeMap::new();
    for region in files.iter().flat_map(|f| &f.newly_covered_regions) {
        newly.entry(region.range()).or_insert_with(|| stand_in(&region.execution));
    }
    let uncovered: BTreeSet<SourceRange> = files
        .iter()
        .flat_map(|f| f.uncovered_regions.iter().copied())
        .filter(|range| !newly.contains_key(range))
        .collect();
    let total = files.iter().filter_map(|f| f.regions).map(|r| r.after.total).max().unwrap_or_default();
    let after = RegionCounts { covered: (base.before.covered + newly.len()).min(total), total };
    let newly = newly.into_iter().map(|(range, execution)| NewRegion { start: range.start, end: range.end, execution });
    (Some(RegionChange { before: base.before, after }), newly.collect(), uncovered.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallKey, CallSite};
    use crate::fault::Fault;
    use crate::report::{Failure, FailureClass, FaultReport, ReportConfig};

    fn fault(key: u64, fault: Fault, to: &str) -> FaultReport {
        FaultReport {
            key: CallKey(key),
            from: "users".into(),
            to: to.into(),
            method: "GET".into(),
            path: format!("/{to}"),
            site: CallSite { file: "src/users.rs".into(), line: key as u32, column: 9 },
            fault,
        }
    }

    /// An execution that injected every fault it planned.
    fn execution(faults: Vec<FaultReport>, fails_at: Option<&str>) -> ExecutionReport {
        let id = execution_id(&faults.iter().map(|f| (f.key, f.fault)).collect());
        ExecutionReport {
            replay: format!("replay {id}"),
            id,
            reference: faults.is_empty(),
            faults,
            outcome: if fails_at.is_some() { Outcome::Fail } else { Outcome::Pass },
            failure: fails_at.map(|location| {
                Failure::new(
                    FailureClass::Crash,
                    "users crashed".into(),
                    Some(location.parse().unwrap()),
                    Some("users".into()),
                )
            }),
            duration_ms: 1.0,
            calls: 3,
            new_lines: BTreeMap::new(),
            minimal_subset: None,
            warnings: Vec::new(),
        }
    }

    fn id(faults: &[FaultReport]) -> String {
        execution_id(&faults.iter().map(|f| (f.key, f.fault)).collect())
    }

    fn graph(calls: u64) -> GraphData {
        GraphData {
            nodes: vec![
                NodeData { id: 0, node: Node::Service { name: "users".into() }, stats: None },
                NodeData {
                    id: 1,
                    node: Node::Site { service: "users".into(), site: "src/users.rs:2:9".parse().unwrap() },
                    stats: Some(SiteStats { calls, faults_injected: 1, failing_executions: 0 }),
                },
                NodeData { id: 2, node: Node::Service { name: "bookings".into() }, stats: None },
            ],
            edges: vec![
                EdgeData { from: 0, to: 1, edge: Edge::Contains },
                EdgeData { from: 1, to: 2, edge: Edge::Calls { method: "GET".into(), path: "/bookings".into() } },
            ],
        }
    }

    fn report(partition: Option<&str>, executions: Vec<ExecutionReport>) -> Report {
        let mut all = vec![execution(vec![], None), execution(vec![], None)];
        all.extend(executions);
        Report {
            schema: SCHEMA.into(),
            name: "bookings".into(),
            labels: [("edition".to_string(), "recitation".to_string())].into_iter().collect(),
            config: ReportConfig {
                max_faults: 2,
                order: crate::plan::Order::Breadth,
                reduce: true,
                max_executions: None,
                max_time_ms: None,
                deadline_ms: 1000,
                replay_command: "replay {id}".into(),
                jobs: 1,
                partition: partition.map(|text| text.parse().unwrap()),
                note: None,
            },
            summary: Summary { complete: true, duration_ms: 10, ..Summary::default() },
            vulnerabilities: group_vulnerabilities(&all, "replay {id}"),
            executions: all,
            pruned: Vec::new(),
            call_graph: graph(4),
            coverage: None,
        }
    }

    fn bookings_500() -> FaultReport {
        fault(2, Fault::Status(500), "bookings")
    }

    fn movies_connect() -> FaultReport {
        fault(3, Fault::Connect, "movies")
    }

    fn movies_timeout() -> FaultReport {
        fault(4, Fault::Timeout, "movies")
    }

    fn two_partitions() -> (Report, Report) {
        let one = report(
            Some("1/2"),
            vec![execution(vec![bookings_500()], Some("src/users.rs:10:5")), execution(vec![movies_connect()], None)],
        );
        let two = report(
            Some("2/2"),
            vec![
                execution(vec![movies_timeout()], Some("src/users.rs:20:5")),
                // Also run by partition 1, e.g. while minimising.
                execution(vec![movies_connect()], None),
            ],
        );
        (one, two)
    }

    #[test]
    fn d14_a_share_of_the_plan_is_merged_once() {
        let (one, two) = two_partitions();
        let error = merge(&[one.clone(), two, one]).expect_err("the same partition twice is refused");
        assert!(error.to_string().contains("it covers 1/2, as report 1 does"), "{error}");
    }

    #[test]
    fn d14_a_report_with_an_impossible_partition_does_not_read() {
        let (one, _) = two_partitions();
        let text = serde_json::to_string(&one).expect("serialises").replace("\"1/2\"", "\"1/0\"");
        let error = serde_json::from_str::<Report>(&text).expect_err("1/0 is refused");
        assert!(error.to_string().contains("partition `1/0` is not K/N"), "{error}");
    }

    #[test]
    fn partitions_unite_by_id_with_the_reference_runs_once() {
        let (mut one, mut two) = two_partitions();
        one.summary.duration_ms = 30;
        two.summary.complete = false;
        two.summary.stopped = Some("execution budget of 4 used up".into());
        let merged = merge(&[one, two]).unwrap();
        let ids: Vec<String> = merged.executions.iter().map(|e| e.id.clone()).collect();
        let reference = id(&[]);
        assert_eq!(
            ids,
            [reference.clone(), reference, id(&[bookings_500()]), id(&[movies_connect()]), id(&[movies_timeout()])]
        );
        assert_eq!(merged.executions.iter().filter(|e| e.reference).count(), 2);
        let s = &merged.summary;
        assert_eq!((s.executions, s.passed, s.failed, s.duration_ms), (5, 3, 2, 30));
        assert!(!s.complete);
        assert_eq!(s.stopped.as_deref(), Some("partition 2/2: execution budget of 4 used up"));
        assert_eq!(merged.vulnerabilities.len(), 2);
        assert_eq!(merged.summary.vulnerabilities, 2);
        assert_eq!(merged.config.partition, None, "both halves make the whole plan");
        let (one, _) = two_partitions();
        assert_eq!(merge(&[one]).unwrap().config.partition.map(|shares| shares.to_string()).as_deref(), Some("1/2"));
    }

    #[test]
    fn a_failure_dominated_by_another_partitions_failure_is_listed_as_pruned() {
        let (mut one, two) = two_partitions();
        // Partition 1 did not know that the timeout fails alone: it ran a superset, then minimised it.
        let mut superset = execution(vec![movies_connect(), movies_timeout()], Some("src/users.rs:20:5"));
        superset.minimal_subset = Some(id(&[movies_timeout()]));
        // A planned fault whose call never happened: only the timeout was injected.
        let mut vanished = execution(vec![movies_timeout()], Some("src/users.rs:20:5"));
        vanished.id = "0123456789ab".into();
        one.executions.push(superset.clone());
        one.executions.push(vanished);
        one.executions.push(execution(vec![movies_timeout()], Some("src/users.rs:20:5")));
        one.pruned.push(PrunedReport { id: "eeeeeeeeeeee".into(), faults: vec![], reason: PruneReason::Observed });
        one.pruned.push(PrunedReport { id: id(&[movies_connect()]), faults: vec![], reason: PruneReason::Observed });
        let merged = merge(&[one, two]).unwrap();
        assert!(merged.execution(&superset.id).is_none());
        assert!(merged.execution("0123456789ab").is_none());
        let pruned: Vec<(&str, &PruneReason)> = merged.pruned.iter().map(|p| (p.id.as_str(), &p.reason)).collect();
        assert_eq!(
            pruned,
            [
                (superset.id.as_str(), &PruneReason::Dominated),
                ("0123456789ab", &PruneReason::Dominated),
                ("eeeeeeeeeeee", &PruneReason::Observed)
            ]
        );
        assert_eq!(merged.summary.pruned, 3);
        assert_eq!(merged.summary.failed, 2);
        // Within one report a non-minimal failure stays, as a single run keeps it.
        let (mut alone, _) = two_partitions();
        let kept = execution(vec![bookings_500(), movies_connect()], Some("src/users.rs:10:5"));
        alone.executions.push(kept.clone());
        assert!(merge(&[alone]).unwrap().execution(&kept.id).is_some());
    }

    #[test]
    fn reports_of_different_systems_or_plans_are_refused_naming_the_report() {
        let (one, two) = two_partitions();
        let mut other = two.clone();
        other.name = "movies".into();
        let error = merge(&[one.clone(), other]).unwrap_err();
        assert!(matches!(error, Error::CannotMerge { index: 1, .. }), "{error}");
        assert!(error.to_string().contains("`movies`"), "{error}");
        let mut other = two.clone();
        other.labels.insert("edition".into(), "hardened".into());
        assert!(merge(&[one.clone(), other]).unwrap_err().to_string().contains("hardened"));
        let mut other = two.clone();
        other.schema = "cloture.report/0".into();
        assert!(merge(&[one.clone(), other]).unwrap_err().to_string().contains("cloture.report/0"));
        let mut other = two;
        other.config.max_faults = 3;
        assert!(merge(&[one, other]).unwrap_err().to_string().contains("max_faults"));
        assert!(merge(&[]).is_err());
    }

    #[test]
    fn call_graphs_unite_their_nodes_and_sum_the_stats() {
        let mut other = graph(6);
        other.nodes.push(NodeData { id: 3, node: Node::Service { name: "movies".into() }, stats: None });
        other.edges.push(EdgeData { from: 1, to: 3, edge: Edge::Calls { method: "GET".into(), path: "/m".into() } });
        let merged = merge_graphs([graph(4), other].iter());
        assert_eq!(merged.nodes.len(), 4);
        assert_eq!(merged.edges.len(), 3);
        let site = merged.nodes.iter().find_map(|n| n.stats.clone()).unwrap();
        assert_eq!(site, SiteStats { calls: 10, faults_injected: 2, failing_executions: 0 });
        assert!(merged.nodes.iter().enumerate().all(|(index, node)| node.id == index));
    }

    #[test]
    fn coverage_unites_the_newly_covered_lines() {
        let (mut one, mut two) = two_partitions();
        let (first, second) = (id(&[bookings_500()]), id(&[movies_timeout()]));
        let file = |newly: Vec<u32>, by: &str| FileCoverage {
            before: Counts { covered: 2, lines: 6 },
            after: Counts { covered: 2 + newly.len(), lines: 6 },
            covered_by: newly.iter().map(|line| (*line, by.to_string())).collect(),
            newly_covered: newly,
            lines: vec![1, 2, 3, 4, 5, 6],
            covered_before: vec![1, 2],
            ..FileCoverage::default()
        };
        let section = |file: FileCoverage, minimal: &str| CoverageReport {
            guided: true,
            files: [("src/users.rs".to_string(), file)].into_iter().collect(),
            fault_lines: Vec::new(),
            minimal_executions: vec![id(&[]), minimal.into()],
            note: None,
            timing: Some(CoverageTiming { snapshots: 3, snapshot_ms: 0.5, processing_ms: 2.0 }),
        };
        one.coverage = Some(section(file(vec![3, 4], &first), &first));
        two.coverage = Some(section(file(vec![4, 5], &second), &second));
        let merged = merge(&[one, two]).unwrap();
        let coverage = merged.coverage.unwrap();
        let users = &coverage.files["src/users.rs"];
        assert_eq!(users.newly_covered, [3, 4, 5]);
        assert_eq!(users.after, Counts { covered: 5, lines: 6 });
        assert_eq!(users.before, Counts { covered: 2, lines: 6 });
        assert_eq!(users.covered_by[&4], first, "the first report's first execution wins");
        assert_eq!(users.covered_by[&5], second);
        assert_eq!(coverage.minimal_executions, [id(&[]), first, second]);
        assert_eq!(coverage.timing, Some(CoverageTiming { snapshots: 6, snapshot_ms: 1.0, processing_ms: 4.0 }));
    }

    #[test]
    fn coverage_unites_the_newly_covered_regions_and_keeps_uncovered_what_no_partition_covered() {
        let (mut one, mut two) = two_partitions();
        let (first, second) = (id(&[bookings_500()]), id(&[movies_timeout()]));
        let range = |line: u32, col: u32| SourceRange { start: (line, col), end: (line, col + 1) };
        let new = |line: u32, col: u32, by: &str| NewRegion {
            start: (line, col),
            end: (line, col + 1),
            execution: by.into(),
        };
        let file = |newly: Vec<NewRegion>, uncovered: Vec<SourceRange>| FileCoverage {
            regions: Some(RegionChange {
                before: RegionCounts { covered: 5, total: 10 },
                after: RegionCounts { covered: 5 + newly.len(), total: 10 },
            }),
            newly_covered_regions: newly,
            uncovered_regions: uncovered,
            ..FileCoverage::default()
        };
        let section = |file: FileCoverage| CoverageReport {
            files: [("src/users.rs".to_string(), file)].into_iter().collect(),
            ..CoverageReport::default()
        };
        // Partition 1 covers the `?` exits at 3:9 and 4:9; partition 2 covers 4:9 and 6:9. 7:9 stays.
        one.coverage = Some(section(file(vec![new(3, 9, &first), new(4, 9, &first)], vec![range(6, 9), range(7, 9)])));
        two.coverage =
            Some(section(file(vec![new(4, 9, &second), new(6, 9, &second)], vec![range(3, 9), range(7, 9)])));
        let merged = merge(&[one, two]).unwrap().coverage.unwrap();
        let users = &merged.files["src/users.rs"];
        let regions = users.regions.expect("regions united");
        assert_eq!(regions.before, RegionCounts { covered: 5, total: 10 });
        assert_eq!(regions.after, RegionCounts { covered: 8, total: 10 });
        assert_eq!(users.newly_covered_regions, [new(3, 9, &first), new(4, 9, &first), new(6, 9, &second)]);
        assert_eq!(users.uncovered_regions, [range(7, 9)]);
    }

    #[test]
    fn reports_without_regions_merge_without_them() {
        let (mut one, mut two) = two_partitions();
        let file = FileCoverage { lines: vec![1], covered_before: vec![1], ..FileCoverage::default() };
        let section = CoverageReport {
            files: [("src/users.rs".to_string(), file)].into_iter().collect(),
            ..CoverageReport::default()
        };
        one.coverage = Some(section.clone());
        two.coverage = Some(section);
        let users = &merge(&[one, two]).unwrap().coverage.unwrap().files["src/users.rs"];
        assert!(
            users.regions.is_none() && users.newly_covered_regions.is_empty() && users.uncovered_regions.is_empty()
        );
    }
}
