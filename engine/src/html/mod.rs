//! The HTML report: one self-contained page (inline CSS, a little inline JavaScript, no network) that a
//! person reads in a browser after an exploration.
//!
//! The page's markup lives in askama templates (`engine/templates/*.html`, checked when the crate compiles,
//! every value HTML-escaped unless marked otherwise), its style and script in `report.css` and `report.js`
//! beside them, compiled in. This module gathers the views the templates show: cross references
//! (`view`), the header, vulnerabilities, coverage and executions (`sections`), the call graph (`graph`, laid
//! out by `layout`) and the annotated sources (`sources`). Rendering is pure: [`render`] turns a [`Report`]
//! and the text of source files into a string, in time linear in the report's size; [`write`] reads the
//! sources and writes the file.

mod graph;
mod layout;
mod sections;
mod sources;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use askama::Template;

// `NodeView`, `Mark` and `Code` are matched on in the templates.
use self::graph::{GraphView, NodeView};
use self::sections::{CoverageView, Executions, Header, Vulnerabilities};
use self::sources::{Code, Mark, SourceFile};
use self::view::Links;
use crate::report::Report;

/// The page's style and script, inlined into it.
const CSS: &str = include_str!("../../templates/report.css");
const SCRIPT: &str = include_str!("../../templates/report.js");

/// The whole page.
#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    report: &'a Report,
    links: &'a Links<'a>,
    css: &'static str,
    script: &'static str,
    header: Header,
    vulnerabilities: Vulnerabilities<'a>,
    graph: Option<GraphView<'a>>,
    coverage: Option<CoverageView<'a>>,
    sources: Vec<SourceFile<'a>>,
    /// Whether the coverage has region data (a column and a legend then show it).
    regions: bool,
    executions: Executions<'a>,
}

/// Renders the whole report as one HTML page. `sources` maps a source path (as in the coverage section,
/// relative to the workspace root) to its text; files found there are shown annotated with coverage.
pub fn render(report: &Report, sources: &BTreeMap<String, String>) -> String {
    let links = Links::new(report, sources);
    let page = ReportPage {
        report,
        links: &links,
        css: CSS,
        script: SCRIPT,
        header: Header::new(report),
        vulnerabilities: Vulnerabilities::new(report, &links),
        graph: GraphView::new(&report.call_graph, &links),
        coverage: CoverageView::new(report, &links),
        sources: sources::source_files(report, sources, &links),
        regions: report.coverage.iter().flat_map(|c| c.files.values()).any(|f| f.regions.is_some()),
        executions: Executions::new(report, &links),
    };
    page.render().expect("rendering into a string only fails if a value's Display does")
}

/// Writes `report.html` into `dir`, with the sources of the report's coverage files (and of the places its
/// vulnerabilities name) read from the workspace at `root`; a file that cannot be read is shown without its
/// source.
pub fn write(report: &Report, dir: &Path, root: &Path) -> Result<PathBuf, crate::Error> {
    let mut wanted: BTreeSet<String> = report.coverage.iter().flat_map(|c| c.files.keys().cloned()).collect();
    for vulnerability in &report.vulnerabilities {
        for place in vulnerability.locations.iter().chain(&vulnerability.call_sites) {
            wanted.insert(place.file.clone());
        }
    }
    let mut sources = BTreeMap::new();
    for file in wanted {
        // Only workspace-relative paths: a report (e.g. one handed to `cloture merge`) must not make the page
        // embed arbitrary files of this machine.
        let path = Path::new(&file);
        let inside = path.is_relative() && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(root.join(&file)) {
            sources.insert(file, text);
        }
    }
    let path = dir.join("report.html");
    crate::atomic::write_atomically(&path, render(report, &sources).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::layout::tests::{graph, SITE};
    use super::*;
    use crate::call::CallKey;
    use crate::fault::Fault;
    use crate::graph::{Edge, EdgeData, Node};
    use crate::report::{
        Counts, CoverageReport, ExecutionReport, Failure, FailureClass, FaultReport, FileCoverage, NewRegion, Outcome,
        RegionChange, RegionCounts, ReportConfig, SourceRange, Summary, Vulnerability, SCHEMA,
    };

    const FILE: &str = "cinema/src/users/recitation.rs";

    fn execution(id: &str, fault: Option<Fault>, failure: Option<Failure>) -> ExecutionReport {
        ExecutionReport {
            id: id.into(),
            reference: fault.is_none(),
            faults: fault
                .map(|fault| FaultReport {
                    key: CallKey(7),
                    from: "users".into(),
                    to: "bookings".into(),
                    method: "GET".into(),
                    path: "/bookings/chris".into(),
                    site: SITE.parse().unwrap(),
                    fault,
                })
                .into_iter()
                .collect(),
            outcome: if failure.is_some() { Outcome::Fail } else { Outcome::Pass },
            failure,
            duration_ms: 3.25,
            calls: 2,
            new_lines: BTreeMap::new(),
            minimal_subset: None,
            warnings: Vec::new(),
            replay: format!("CLOTURE_REPLAY={id} cargo test"),
        }
    }

    /// A small report: two reference runs and, when `message` is given, one crash with that message.
    fn report(message: Option<&str>) -> Report {
        let mut executions = vec![execution("000000000000", None, None), execution("000000000000", None, None)];
        executions.push(execution("aaaaaaaaaaaa", Some(Fault::Status(404)), None));
        let mut vulnerabilities = Vec::new();
        if let Some(message) = message {
            let failure = Failure::new(
                FailureClass::Crash,
                message.into(),
                Some(format!("{FILE}:5:20").parse().unwrap()),
                Some("users".into()),
            );
            executions.push(execution("bbbbbbbbbbbb", Some(Fault::Status(500)), Some(failure)));
            vulnerabilities.push(Vulnerability {
                id: "V1".into(),
                class: FailureClass::Crash,
                title: format!("users crashes when bookings answers status:500 ({message})"),
                family: "status".into(),
                faults: vec!["status:500".parse().unwrap()],
                callees: vec!["bookings".into()],
                call_sites: vec![SITE.parse().unwrap()],
                locations: vec![format!("{FILE}:5:20").parse().unwrap()],
                message: message.into(),
                service: Some("users".into()),
                said: Default::default(),
                executions: vec!["bbbbbbbbbbbb".into()],
                replay: "CLOTURE_REPLAY=bbbbbbbbbbbb cargo test".into(),
            });
        }
        let failed = executions.iter().filter(|e| e.outcome == Outcome::Fail).count();
        let mut file = FileCoverage {
            before: Counts { covered: 2, lines: 4 },
            after: Counts { covered: 3, lines: 4 },
            newly_covered: vec![3],
            lines: vec![1, 2, 3, 4],
            covered_before: vec![1, 2],
            covered_by: BTreeMap::new(),
            ..FileCoverage::default()
        };
        file.covered_by.insert(3, "aaaaaaaaaaaa".into());
        Report {
            schema: SCHEMA.into(),
            name: "cinema::bookings".into(),
            labels: [("edition".to_string(), "recitation".to_string())].into_iter().collect(),
            config: ReportConfig {
                max_faults: 2,
                order: crate::plan::Order::Coverage,
                reduce: true,
                max_executions: None,
                max_time_ms: None,
                deadline_ms: 10_000,
                replay_command: "CLOTURE_REPLAY={id} cargo test".into(),
                jobs: 1,
                partition: None,
                note: None,
            },
            summary: Summary {
                executions: executions.len(),
                passed: executions.len() - failed,
                failed,
                pruned: 0,
                duration_ms: 1234,
                complete: true,
                stopped: None,
                nondeterministic: Vec::new(),
                vulnerabilities: vulnerabilities.len(),
            },
            executions,
            vulnerabilities,
            pruned: Vec::new(),
            call_graph: graph(u64::from(message.is_some())),
            coverage: Some(CoverageReport {
                guided: true,
                files: [(FILE.to_string(), file)].into_iter().collect(),
                fault_lines: Vec::new(),
                minimal_executions: Vec::new(),
                note: None,
                timing: None,
            }),
        }
    }

    fn sources() -> BTreeMap<String, String> {
        let text = "fn a() {\n    b();\n    handle();\n    never();\n}\n";
        [(FILE.to_string(), text.to_string())].into_iter().collect()
    }

    /// The `<tr>` of source line `line`.
    fn source_row(html: &str, line: u32) -> &str {
        let start = html.find(&format!("<tr id=\"src-0-L{line}\"")).expect("the line has a row");
        &html[start..start + html[start..].find("</tr>").unwrap()]
    }

    #[test]
    fn the_five_special_characters_are_escaped_in_text_and_attributes() {
        let mut report = report(None);
        report.name = r#"<a href="x">Tom & 'Jerry'</a>"#.into();
        report.executions[2].replay = r#"run "it" & <stop> 'now'"#.into();
        let html = render(&report, &sources());
        assert!(html.contains("<h1>&#60;a href=&#34;x&#34;&#62;Tom &#38; &#39;Jerry&#39;&#60;/a&#62;</h1>"));
        let replay = "run &#34;it&#34; &#38; &#60;stop&#62; &#39;now&#39;";
        assert!(html.contains(&format!("<code title=\"{replay}\">{replay}</code>")), "escaped in an attribute too");
        assert!(!html.contains("Tom & "));
    }

    #[test]
    fn cycles_and_a_missing_test_node_are_drawn() {
        let mut report = report(None);
        report.call_graph.nodes.remove(0);
        report.call_graph.edges.retain(|e| e.from != 0);
        report.call_graph.edges.push(EdgeData {
            from: 5,
            to: 2,
            edge: Edge::Calls { method: "GET".into(), path: "/".into() },
        });
        let html = render(&report, &BTreeMap::new());
        assert!(html.contains("<svg class=\"callgraph\""));
        assert_eq!(html.matches("<g class=\"node ").count(), report.call_graph.nodes.len());
    }

    #[test]
    fn a_script_in_a_panic_message_is_escaped_everywhere() {
        let evil = "<script>alert(1)</script>";
        let mut report = report(Some(evil));
        report.name = format!("name {evil}");
        report.labels.insert(format!("k{evil}"), format!("\"'{evil}"));
        report.summary.stopped = Some(evil.into());
        report.executions[2].faults[0].path = format!("/x/{evil}");
        report.call_graph.nodes[2].node = Node::Service { name: format!("users{evil}") };
        report.call_graph.edges[1].edge = Edge::Calls { method: "GET".into(), path: evil.into() };
        report.coverage.as_mut().unwrap().note = Some(evil.into());
        // A region marked over the script's text, which is covered line 1.
        let file = report.coverage.as_mut().unwrap().files.get_mut(FILE).unwrap();
        file.uncovered_regions = vec![SourceRange { start: (1, 10), end: (1, 10 + evil.len() as u32) }];
        let mut sources = sources();
        sources.insert(FILE.into(), format!("let s = \"{evil}\";\n"));
        let html = render(&report, &sources);
        assert!(html.contains(
            "title=\"this region never ran, though its line did\">&#60;script&#62;alert(1)&#60;/script&#62;</span>"
        ));
        assert!(!html.contains("<script>alert"), "raw script in the page");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert_eq!(html.matches("<script").count(), 1, "only the page's own script");
        assert!(!html.contains("\"'<"), "a quote from the data closed an attribute");
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = render(&report(Some("boom")), &sources());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for external in ["http://", "https://", "<link", " src=", "@import", "url(http"] {
            assert!(!html.contains(external), "the page references something external: {external}");
        }
    }

    #[test]
    fn without_vulnerabilities_the_page_says_every_execution_passed() {
        let html = render(&report(None), &sources());
        assert!(html.contains("Every execution passed"));
        let html = render(&report(Some("boom")), &sources());
        assert!(!html.contains("Every execution passed"));
        assert!(html.contains("id=\"vuln-V1\""));
        assert!(html.contains("CLOTURE_REPLAY=bbbbbbbbbbbb cargo test</code><button"));
    }

    #[test]
    fn warnings_are_listed_even_when_every_execution_passed() {
        let mut report = report(None);
        let warning = crate::report::Warning {
            kind: crate::report::WarningKind::MaskedFailure,
            message: "masked failure: the test accepted a 200 to GET /x whose body differs".into(),
        };
        report.executions[2].warnings.push(warning.clone());
        let html = render(&report, &sources());
        assert!(html.contains("the services handle every fault tried — but see the warnings below"), "the verdict");
        assert!(html.contains("<h3 id=\"warnings\">Warnings</h3>"), "the list");
        let listed = "<span class=\"badge warn\">masked failure</span> masked failure: the test accepted a 200";
        assert_eq!(html.matches(listed).count(), 2, "in the list and on the execution's row");
        assert!(html.contains("1 execution:</span> <a class=\"exec-link\""), "the list links the execution");
        // The same warning of two executions is listed once, with both.
        report.executions[1].warnings.push(warning);
        let html = render(&report, &sources());
        assert_eq!(html.matches(listed).count(), 3, "once in the list, and on each execution's row");
        assert!(html.contains("2 executions:</span>"), "both linked");
        assert!(!render(&self::report(None), &sources()).contains("id=\"warnings\""), "no list without warnings");
    }

    #[test]
    fn header_shows_counts_labels_and_early_stop() {
        let mut report = report(Some("boom"));
        report.summary.stopped = Some("execution budget of 4 used up".into());
        report.summary.nondeterministic = vec!["00000000000000ab".parse().unwrap()];
        let html = render(&report, &sources());
        assert!(html.contains("<b>edition</b> recitation"));
        assert!(html.contains("<span class=\"value\">4</span><span class=\"label\">executions</span>"));
        assert!(html.contains("Stopped early:</b> execution budget of 4 used up"));
        assert!(html.contains("<code>00000000000000ab</code>"));
        assert!(html.contains("1.23 s"));
    }

    #[test]
    fn graph_nodes_are_coloured_by_outcome() {
        let html = render(&report(Some("boom")), &sources());
        assert_eq!(html.matches("<g class=\"node service").count(), 4);
        assert_eq!(html.matches("<g class=\"node site").count(), 3);
        assert!(html.contains("<g class=\"node site fail\""));
        assert!(html.contains("<g class=\"node site ok\""));
        assert!(html.contains("<g class=\"node site never\""));
        assert!(html.contains("marker-end=\"url(#arrow-fail)\""));
        // The failing site links to its line in the annotated source.
        assert!(html.contains("<a href=\"#src-0-L41\"><g class=\"node site fail\""));
        let html = render(&report(None), &sources());
        assert!(!html.contains("<g class=\"node site fail\""));
    }

    #[test]
    fn source_lines_are_classed_by_coverage() {
        let html = render(&report(Some("boom")), &sources());
        assert!(source_row(&html, 1).contains("class=\"cov-before\""));
        let newly = source_row(&html, 3);
        assert!(newly.contains("class=\"cov-fault\""));
        assert!(newly.contains("<a class=\"by\" href=\"#exec-aaaaaaaaaaaa\""), "{newly}");
        assert!(newly.contains("first covered by execution aaaaaaaaaaaa (users → bookings GET"));
        assert!(source_row(&html, 4).contains("class=\"cov-never\""));
        let closing = source_row(&html, 5);
        assert!(closing.contains("class=\"cov-none\""));
        assert!(closing.contains("V1 fails here"), "the panic location is marked");
        assert!(html.contains("<td class=\"code\">    handle();</td>"));
        // Not shown without the source text.
        let html = render(&report(None), &BTreeMap::new());
        assert!(!html.contains("id=\"sources\""));
        assert!(!html.contains("src-0-L"));
    }

    #[test]
    fn coverage_table_and_note() {
        let mut report = report(None);
        report.coverage.as_mut().unwrap().note = Some("tests are not instrumented".into());
        let html = render(&report, &sources());
        assert!(html.contains("2/4 <span class=\"pct\">50.0%</span>"));
        assert!(html.contains("3/4 <span class=\"pct\">75.0%</span>"));
        assert!(html.contains("style=\"width:50.0%\"></span><span class=\"b-fault\" style=\"width:25.0%\">"));
        assert!(html.contains("<b>Note:</b> tests are not instrumented"));
        report.coverage = None;
        let html = render(&report, &sources());
        assert!(html.contains("No coverage in this report"));
        assert!(!html.contains("<table class=\"coverage\">"));
    }

    #[test]
    fn executions_have_unique_anchors_filters_and_failure_details() {
        let html = render(&report(Some("boom")), &sources());
        assert!(html.contains("id=\"exec-000000000000\""));
        assert!(html.contains("id=\"exec-000000000000-2\""), "the second reference run gets its own anchor");
        assert!(html.contains("data-outcome=\"fail\" data-class=\"crash\""));
        assert!(html.contains("data-outcome=\"pass\" data-class=\"none\""));
        assert!(html.contains("id=\"filter-text\"") && html.contains("id=\"filter-class\""));
        assert!(html.contains("<a class=\"vlink\" href=\"#vuln-V1\">V1</a>"));
        let location = format!("{FILE}:5:20").replace('/', "/<wbr>");
        assert!(html.contains(&format!(
            "at <a class=\"loc\" href=\"#src-0-L5\" title=\"show this line in the annotated source\"><code>{location}</code></a>"
        )));
        assert!(html.contains("<span class=\"fault\">status:500</span>"));
        assert!(html.contains("3.2 ms") || html.contains("3.3 ms"));
    }

    #[test]
    fn write_shows_workspace_sources_and_never_reads_outside_the_workspace() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let base = std::env::temp_dir().join(format!("cloture-html-write-{}-{nanos}", std::process::id()));
        let root = base.join("workspace");
        let file = root.join(FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &sources()[FILE]).unwrap();
        std::fs::write(base.join("secret.rs"), "let secret = 1;\n").unwrap();
        let mut report = report(Some("boom"));
        let outside = FileCoverage { lines: vec![1], covered_before: vec![1], ..FileCoverage::default() };
        report.coverage.as_mut().unwrap().files.insert("../secret.rs".into(), outside);
        let page = write(&report, &base, &root).unwrap();
        let html = std::fs::read_to_string(&page).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(page, base.join("report.html"));
        assert!(source_row(&html, 3).contains("<td class=\"code\">    handle();</td>"), "the workspace file is shown");
        assert!(!html.contains("let secret"), "a path leaving the workspace was read");
        assert!(html.contains("Source text not available for: <code>../secret.rs</code>"));
    }

    /// The small report with region data: on line 2, covered by the functional test, the `?` exit was first
    /// covered by execution aaaaaaaaaaaa; on line 3, newly covered by that execution, the `?` exit never ran.
    fn report_with_regions() -> (Report, BTreeMap<String, String>) {
        let mut report = report(Some("boom"));
        let file = report.coverage.as_mut().unwrap().files.get_mut(FILE).unwrap();
        file.regions = Some(RegionChange {
            before: RegionCounts { covered: 3, total: 6 },
            after: RegionCounts { covered: 5, total: 6 },
        });
        let new = |line: u32, col: u32| NewRegion {
            start: (line, col),
            end: (line, col + 1),
            execution: "aaaaaaaaaaaa".into(),
        };
        file.newly_covered_regions = vec![new(2, 8), new(3, 5)];
        file.uncovered_regions = vec![SourceRange { start: (3, 13), end: (3, 14) }];
        let text = "fn a() {\n    b()?;\n    handle()?;\n    never();\n}\n";
        (report, [(FILE.to_string(), text.to_string())].into_iter().collect())
    }

    #[test]
    fn regions_are_marked_on_their_columns_with_the_execution_that_first_covered_them() {
        let (with_regions, sources) = report_with_regions();
        let html = render(&with_regions, &sources);
        let covered_before = source_row(&html, 2);
        assert!(
            covered_before.contains("<td class=\"code\">    b()<a class=\"reg-fault\" href=\"#exec-aaaaaaaaaaaa\" title=\"this region was first covered by execution aaaaaaaaaaaa (users → bookings GET /bookings/chris status:404 at"),
            "{covered_before}"
        );
        assert!(covered_before.contains("\">?</a>;</td>"));
        assert!(covered_before.contains("<a class=\"by\" href=\"#exec-aaaaaaaaaaaa\""), "the line names the execution");
        // Line 3 was newly covered by the same execution: only the `?` that never ran is marked.
        let newly = source_row(&html, 3);
        assert!(
            newly.contains("<td class=\"code\">    handle()<span class=\"reg-never\" title=\"this region never ran, though its line did\">?</span>;</td>"),
            "{newly}"
        );
        assert_eq!(newly.matches("class=\"by\"").count(), 1, "the line's own label only");
        assert!(
            html.contains("<th class=\"num\">Regions</th>")
                && html.contains("3/6 → 5/6 <span class=\"pct\">83.3%</span>")
        );
        assert!(html.contains("regions 3/6 → 5/6"), "the file's summary line gives its regions");
        // Without region data, no column.
        assert!(!render(&report(Some("boom")), &sources).contains("<th class=\"num\">Regions</th>"));
    }

    #[test]
    fn region_columns_outside_the_line_or_inside_a_character_do_not_break_the_line() {
        let (mut report, mut sources) = report_with_regions();
        let file = report.coverage.as_mut().unwrap().files.get_mut(FILE).unwrap();
        // Line 2 is now `    é()?;`: column 6 falls inside `é`; an overlapping region and one past the end.
        file.newly_covered_regions.clear();
        file.uncovered_regions = vec![
            SourceRange { start: (2, 6), end: (2, 7) },
            SourceRange { start: (2, 6), end: (2, 9) },
            SourceRange { start: (2, 40), end: (3, 2) },
        ];
        sources.insert(FILE.into(), "fn a() {\n    é()?;\n    handle()?;\n".into());
        let html = render(&report, &sources);
        let row = source_row(&html, 2);
        assert!(row.contains("<td class=\"code\">    <span class=\"reg-never\""), "{row}");
        assert!(row.contains(">é</span><span class=\"reg-never\""), "{row}");
        assert!(row.contains(">()</span>?;</td>"), "{row}");
    }
}
