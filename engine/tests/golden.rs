//! `report.json` is an interface: schema `cloture.report/1`. The engine's model is typed (orders, shares of
//! a plan, faults, call sites, call keys), and the text is made only at the serde boundary. These stored
//! reports, written by earlier versions of cloture, must read and write back byte for byte.

use cloture::report::FailureClass;
use cloture::Report;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn round_trip(name: &str) -> Report {
    let text = fixture(name);
    let report: Report = serde_json::from_str(&text).expect("a stored report reads");
    let written = serde_json::to_string_pretty(&report).expect("a report serialises");
    assert!(written == text.trim_end(), "{name} changed when written back:\n{}", first_difference(&written, &text));
    report
}

fn first_difference(ours: &str, stored: &str) -> String {
    let line = ours.lines().zip(stored.lines()).position(|(a, b)| a != b).unwrap_or(0);
    format!(
        "line {}: {:?} where the stored report has {:?}",
        line + 1,
        ours.lines().nth(line),
        stored.lines().nth(line)
    )
}

#[test]
fn an_exploration_report_writes_back_byte_for_byte() {
    let report = round_trip("reports/recitation.json");
    assert_eq!(report.config.order, cloture::plan::Order::Coverage);
    assert_eq!(report.vulnerabilities.len(), 3);
    let crash = &report.vulnerabilities[0];
    assert_eq!(crash.class, FailureClass::Crash);
    assert!(crash.locations.iter().all(|location| location.file == "cinema/src/users/recitation.rs"));
    assert!(crash.call_sites.iter().all(|site| site.line > 0));
}

#[test]
fn a_partitioned_report_writes_back_byte_for_byte() {
    let report = round_trip("reports/partition.json");
    let shares = report.config.partition.expect("a partitioned run names its share");
    assert_eq!((shares.0[0].k(), shares.0[0].n()), (1, 2));
}

#[test]
fn a_report_of_an_earlier_version_without_newer_fields_still_reads() {
    let report: Report = serde_json::from_str(&fixture("cinema_report.json")).expect("reads");
    assert_eq!(report.config.jobs, 1, "absent fields take their defaults");
    assert!(report.coverage.is_some());
}

#[test]
fn a_report_with_a_malformed_typed_field_is_refused_with_the_reason() {
    let text = fixture("reports/recitation.json").replacen("\"order\": \"coverage\"", "\"order\": \"sideways\"", 1);
    let error = serde_json::from_str::<Report>(&text).expect_err("an unknown order is refused");
    assert!(error.to_string().contains("unknown order `sideways`"), "{error}");
}
