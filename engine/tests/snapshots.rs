//! Snapshots of what cloture shows people: the terminal summary and the outline of `report.html` for a
//! stored report. A change to either shows in review as a snapshot diff (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test`).

use std::collections::BTreeMap;

use cloture::Report;

fn stored(name: &str) -> Report {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture readable")).expect("a report")
}

/// The page's structure: every element with an `id`, headings with their text, and table headers, in
/// document order, one per line and indented by nesting of sections.
fn outline(html: &str) -> String {
    let mut lines = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let id = attribute(tag, "id");
        let text_after = || rest[end + 1..].split('<').next().unwrap_or("").trim().to_string();
        match name.as_str() {
            "h1" | "h2" | "h3" | "th" | "summary" => lines.push(format!("{name}: {}", text_after())),
            _ if id.is_some() && !id.as_deref().is_some_and(|id| id.starts_with('x') || id.starts_with('L')) => {
                lines.push(format!("{name}#{}", id.unwrap_or_default()))
            }
            _ => {}
        }
    }
    lines.join("\n")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[at..].split('"').next().unwrap_or("").to_string())
}

#[test]
fn the_terminal_summary_of_a_stored_exploration() {
    insta::assert_snapshot!(stored("reports/recitation.json").terminal_summary());
}

#[test]
fn the_outline_of_the_report_page() {
    let report = stored("cinema_report.json");
    let sources: BTreeMap<String, String> = BTreeMap::new();
    insta::assert_snapshot!(outline(&cloture::html::render(&report, &sources)));
}

#[test]
fn the_closing_advice_names_the_oracle_in_the_language_of_the_test() {
    let mut report = stored("cinema_report.json");
    let advice = |report: &Report| {
        let summary = report.terminal_summary();
        summary.lines().find(|line| line.starts_with("next:")).expect("a crash gives advice").to_string()
    };
    assert!(advice(&report).contains("cloture::fault_injected()"), "{}", advice(&report));
    report.config.replay_command =
        "cloture replay {id} --runner 'python3 -m cloture.runner test_x.py' --services s.json".to_string();
    assert!(advice(&report).contains("cloture.fault_injected()"), "{}", advice(&report));
    assert!(!advice(&report).contains("::"), "{}", advice(&report));
    // The page gives the same advice, its code as code.
    let page = cloture::html::render(&report, &BTreeMap::new());
    assert!(page.contains("<code>cloture.fault_injected()</code>"), "the page's advice names the Python oracle");
    assert!(!page.contains("cloture::fault_injected"), "no Rust on the page of a Python test");
    report.config.replay_command = "cloture replay {id} --functional-test 'node test.mjs' --services s.json".into();
    assert!(advice(&report).contains("await faultInjected()"), "{}", advice(&report));
    // The services file's path says nothing of the test's language.
    report.config.replay_command = "cloture replay {id} --functional-test ./test.sh --services python/s.json".into();
    assert!(advice(&report).contains("/v1/executions/$CLOTURE_EXECUTION/injected"), "{}", advice(&report));
}
