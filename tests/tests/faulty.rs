//! The cinema's faulty functional tests: cloture explores `GET /users/{user}/bookings` with faults injected
//! at every call the users service makes, in this process, against both editions.

use std::collections::BTreeSet;
use std::time::Duration;

use cinema::{Cinema, CinemaConfig, Edition, Service};
use cinema_tests::scenario::{Oracle, UserBookingsTest};
use cloture::report::{FailureClass, Outcome};
use cloture::{Config, Report};

async fn explore(edition: Edition, user: &str, oracle: Oracle, config: Config) -> (Report, Cinema) {
    let cinema = cinema::start(CinemaConfig::new(edition)).await.expect("the cinema starts");
    let test = UserBookingsTest::new(&cinema.url(Service::Users), user, oracle);
    let report = cloture::explore(&config, || test.clone().run()).await.expect("the exploration completes");
    (report, cinema)
}

fn config(name: &str) -> Config {
    let catalog =
        cloture::Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cinema/faults.catalog"))
            .expect("the cinema's fault catalog parses");
    Config {
        name: name.to_string(),
        deadline: Duration::from_secs(5),
        catalog,
        order: cloture::plan::Order::Breadth,
        ..Config::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn test_cinema_user_user_faulty_bookings() {
    let (report, cinema) =
        explore(Edition::Hardened, "chris_rivers", Oracle::Accepting, config("test_cinema_user_user_faulty_bookings"))
            .await;
    cinema.shutdown().await.unwrap();
    assert_eq!(report.summary.failed, 0, "{}", report.terminal_summary());
    assert!(report.vulnerabilities.is_empty());
    assert!(report.summary.complete);
    // Two reference runs and seven faults on each of the two calls users makes (connect, timeout, slow,
    // status:500, 502, 503 and the 404 of the catalog): every call has a time limit, so both timeout and slow.
    assert_eq!(report.summary.executions, 2 + 7 + 7, "{}", report.terminal_summary());
    let faulted: BTreeSet<&str> =
        report.executions.iter().flat_map(|e| e.faults.iter().map(|f| f.to.as_str())).collect();
    assert_eq!(faulted, BTreeSet::from(["bookings", "movies"]));
}

#[tokio::test(flavor = "current_thread")]
async fn recitation_edition_fails_for_exactly_the_three_vulnerabilities() {
    let (report, cinema) = explore(Edition::Recitation, "chris_rivers", Oracle::Accepting, config("recitation")).await;
    cinema.shutdown().await.unwrap();
    let summary = report.terminal_summary();
    let mut kinds = BTreeSet::new();
    for execution in report.executions.iter().filter(|e| e.outcome == Outcome::Fail) {
        let failure = execution.failure.as_ref().expect("a failing execution says why");
        let fault = execution.faults[0].fault;
        let class = if fault == cloture::Fault::Slow { FailureClass::Hang } else { FailureClass::Crash };
        assert_eq!(failure.class, class, "{summary}");
        assert_eq!(failure.service.as_deref(), Some("users"));
        let location = failure.location.as_ref().expect("the crash location is kept");
        assert_eq!(location.file, "cinema/src/users/recitation.rs", "{location}");
        assert_eq!(execution.faults.len(), 1, "failures are minimal: {summary}");
        let fault = &execution.faults[0];
        assert!(fault.site.file.ends_with("cinema/src/users/recitation.rs"), "{}", fault.site);
        kinds.insert((fault.fault.family(), fault.to.clone()));
    }
    let expected: BTreeSet<(&str, String)> = [
        ("status", "bookings".to_string()),
        ("status", "movies".to_string()),
        ("slow", "bookings".to_string()),
        ("slow", "movies".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, expected, "{summary}");
    // Bookings error status, movies error status, users hanging when either is slow (no time limits).
    assert_eq!(report.vulnerabilities.len(), 3, "{summary}");
    let families: BTreeSet<&str> = report.vulnerabilities.iter().map(|v| v.family.as_str()).collect();
    assert_eq!(families, BTreeSet::from(["status", "slow"]));
    let hang = report.vulnerabilities.iter().find(|v| v.class == FailureClass::Hang).expect("a hang");
    assert!(hang.title.starts_with("users waits forever when bookings or movies is slow"), "{}", hang.title);
    // A call without a time limit cannot time out: no timeout fault was injected.
    assert!(report.executions.iter().all(|e| e.faults.iter().all(|f| f.fault != cloture::Fault::Timeout)));
    // Connection errors are handled: those executions pass.
    let connect_passes = report
        .executions
        .iter()
        .filter(|e| e.faults.iter().any(|f| f.fault == cloture::Fault::Connect))
        .all(|e| e.outcome == Outcome::Pass);
    assert!(connect_passes, "{summary}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_strict_oracle_rejects_the_hardened_editions_graceful_answers() {
    let (report, cinema) = explore(Edition::Hardened, "chris_rivers", Oracle::Strict, config("strict")).await;
    cinema.shutdown().await.unwrap();
    assert!(report.summary.failed > 0);
    for execution in report.executions.iter().filter(|e| e.outcome == Outcome::Fail) {
        let failure = execution.failure.as_ref().unwrap();
        assert_eq!(failure.class, FailureClass::Rejected, "{}", report.terminal_summary());
        assert!(
            failure.message.contains("status 503") || failure.message.contains("status 404"),
            "{}",
            failure.message
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_failure_replays_to_the_same_failure() {
    let dir = std::env::temp_dir().join(format!("cloture-replay-{}", std::process::id()));
    let mut config = config("replay");
    config.report_dir = Some(dir.clone());
    let (report, cinema) = explore(Edition::Recitation, "chris_rivers", Oracle::Accepting, config.clone()).await;
    assert!(dir.join("report.json").exists());
    let test = UserBookingsTest::new(&cinema.url(Service::Users), "chris_rivers", Oracle::Accepting);
    for vulnerability in &report.vulnerabilities {
        let id = &vulnerability.executions[0];
        let recorded = report.execution(id).unwrap();
        let replayed = cloture::explore::replay(&config, id, || test.clone().run()).await.unwrap();
        let execution = &replayed.executions[0];
        assert_eq!(&execution.id, id);
        assert_eq!(execution.faults, recorded.faults);
        assert_eq!(execution.failure, recorded.failure);
        assert!(vulnerability.replay.contains(id.as_str()));
    }
    let error = cloture::explore::replay(&config, "0000deadbeef", || test.clone().run()).await.unwrap_err();
    assert!(error.to_string().contains("no execution `0000deadbeef`"), "{error}");
    cinema.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "current_thread")]
async fn dynamic_reduction_cuts_the_combinations_of_a_user_with_four_movie_calls() {
    let mut with = config("dwight reduced");
    with.max_faults = 2;
    let mut without = with.clone();
    without.reduce = false;
    let (reduced, cinema) = explore(Edition::Hardened, "dwight_schrute", Oracle::Accepting, with).await;
    cinema.shutdown().await.unwrap();
    let (full, cinema) = explore(Edition::Hardened, "dwight_schrute", Oracle::Accepting, without).await;
    cinema.shutdown().await.unwrap();
    assert_eq!(reduced.summary.failed, 0, "{}", reduced.terminal_summary());
    assert_eq!(full.summary.failed, 0);
    // One bookings call and four movie calls, seven faults each: 35 single faults either way.
    assert!(reduced.summary.executions >= 2 + 35, "{}", reduced.summary.executions);
    assert!(
        reduced.summary.executions * 5 < full.summary.executions,
        "{} with reduction, {} without",
        reduced.summary.executions,
        full.summary.executions
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_budget_stops_the_exploration_and_says_so() {
    let mut config = config("budget");
    config.max_executions = Some(5);
    let (report, cinema) = explore(Edition::Recitation, "chris_rivers", Oracle::Accepting, config).await;
    cinema.shutdown().await.unwrap();
    assert_eq!(report.summary.executions, 5);
    assert!(!report.summary.complete);
    assert!(report.summary.stopped.as_deref().unwrap_or_default().contains("budget"));
}

/// A vulnerability's class, faults, callees, call sites and failure locations, each list sorted.
type Shape = (String, Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// What each vulnerability is, whatever the order its executions were found in.
fn vulnerability_shapes(report: &Report) -> BTreeSet<Shape> {
    fn sorted<T: ToString>(items: &[T]) -> Vec<String> {
        items.iter().map(T::to_string).collect::<BTreeSet<_>>().into_iter().collect()
    }
    report
        .vulnerabilities
        .iter()
        .map(|v| {
            (v.class.to_string(), sorted(&v.faults), sorted(&v.callees), sorted(&v.call_sites), sorted(&v.locations))
        })
        .collect()
}

fn failing_ids(report: &Report) -> BTreeSet<String> {
    report.executions.iter().filter(|e| e.outcome == Outcome::Fail).map(|e| e.id.clone()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_partitioned_run_merged_finds_the_same_failures_as_a_single_run() {
    let cinema = cinema::start(CinemaConfig::new(Edition::Recitation)).await.expect("the cinema starts");
    let test = UserBookingsTest::new(&cinema.url(Service::Users), "chris_rivers", Oracle::Accepting);
    let mut whole = config("partitioned");
    whole.max_faults = 2;
    let single = cloture::explore(&whole, || test.clone().run()).await.expect("the exploration completes");
    let mut partitions = Vec::new();
    for k in 1..=2 {
        let share = Config { partition: cloture::plan::Partition::new(k, 2), ..whole.clone() };
        let report = cloture::explore(&share, || test.clone().run()).await.expect("the partition completes");
        assert_eq!(report.config.partition.as_ref().map(ToString::to_string), Some(format!("{k}/2")));
        assert!(report.summary.executions < single.summary.executions, "{}", report.terminal_summary());
        partitions.push(report);
    }
    cinema.shutdown().await.unwrap();
    let merged = cloture::merge::merge(&partitions).expect("the partitions merge");
    assert_eq!(merged.config.partition, None, "the two halves are the whole plan");
    assert!(merged.summary.complete);
    assert_eq!(
        failing_ids(&merged),
        failing_ids(&single),
        "merged:\n{}\nsingle:\n{}",
        merged.terminal_summary(),
        single.terminal_summary()
    );
    assert_eq!(vulnerability_shapes(&merged), vulnerability_shapes(&single));
    // Titles list callees and faults in the order they were found, which differs between one run and two.
    let titles = |report: &Report| -> BTreeSet<Vec<String>> {
        report
            .vulnerabilities
            .iter()
            .map(|v| {
                let mut words: Vec<String> = v.title.replace(',', " ").split_whitespace().map(String::from).collect();
                words.sort();
                words
            })
            .collect()
    };
    assert_eq!(titles(&merged), titles(&single));
    assert_eq!(merged.executions.iter().filter(|e| e.reference).count(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn parallel_jobs_find_the_same_executions_as_sequential() {
    for (edition, user) in [(Edition::Recitation, "chris_rivers"), (Edition::Hardened, "dwight_schrute")] {
        let cinema = cinema::start(CinemaConfig::new(edition)).await.expect("the cinema starts");
        let test = UserBookingsTest::new(&cinema.url(Service::Users), user, Oracle::Accepting);
        let mut runs = Vec::new();
        for jobs in [1, 4] {
            let config = Config { jobs, ..config("parallel") };
            let report = cloture::explore(&config, || test.clone().run()).await.expect("the exploration completes");
            assert_eq!(report.config.jobs, jobs);
            runs.push(report);
        }
        cinema.shutdown().await.unwrap();
        let shape = |report: &Report| -> Vec<(String, Outcome, Option<String>)> {
            report.executions.iter().map(|e| (e.id.clone(), e.outcome, e.minimal_subset.clone())).collect()
        };
        assert_eq!(shape(&runs[1]), shape(&runs[0]), "{edition} {user}");
        assert_eq!(runs[1].summary.pruned, runs[0].summary.pruned);
        assert_eq!(vulnerability_shapes(&runs[1]), vulnerability_shapes(&runs[0]));
    }
    // A budget holds whatever the jobs.
    let cinema = cinema::start(CinemaConfig::new(Edition::Recitation)).await.expect("the cinema starts");
    let test = UserBookingsTest::new(&cinema.url(Service::Users), "chris_rivers", Oracle::Accepting);
    let mut ids = Vec::new();
    for jobs in [1, 4] {
        let config = Config { jobs, max_executions: Some(5), ..config("parallel budget") };
        let report = cloture::explore(&config, || test.clone().run()).await.expect("the exploration completes");
        assert_eq!(report.summary.executions, 5);
        assert!(!report.summary.complete);
        ids.push(report.executions.iter().map(|e| e.id.clone()).collect::<Vec<_>>());
    }
    cinema.shutdown().await.unwrap();
    assert_eq!(ids[0], ids[1]);
}

/// A probe that measures every execution (like per-execution coverage) but records nothing.
struct Measuring {
    running: usize,
    most: usize,
}

impl cloture::explore::Probe for Measuring {
    fn before(&mut self) {
        self.running += 1;
        self.most = self.most.max(self.running);
    }

    fn after(&mut self, _execution_id: &str) -> std::collections::BTreeMap<String, Vec<u32>> {
        self.running -= 1;
        Default::default()
    }

    fn score(
        &self,
        _candidate: &cloture::plan::Candidate,
        _calls: &std::collections::HashMap<cloture::CallKey, cloture::report::FaultReport>,
    ) -> f64 {
        0.0
    }

    fn chosen(
        &mut self,
        _candidate: &cloture::plan::Candidate,
        _calls: &std::collections::HashMap<cloture::CallKey, cloture::report::FaultReport>,
    ) {
    }

    fn finish(&mut self, _report: &mut Report) {}
}

#[tokio::test(flavor = "current_thread")]
async fn an_active_probe_runs_one_execution_at_a_time_and_says_so() {
    let cinema = cinema::start(CinemaConfig::new(Edition::Recitation)).await.expect("the cinema starts");
    let test = UserBookingsTest::new(&cinema.url(Service::Users), "chris_rivers", Oracle::Accepting);
    let config = Config { jobs: 4, ..config("measured") };
    let mut probe = Measuring { running: 0, most: 0 };
    let report = cloture::explore::explore_with(&config, || test.clone().run(), Some(&mut probe))
        .await
        .expect("the exploration completes");
    cinema.shutdown().await.unwrap();
    assert_eq!(probe.most, 1);
    assert_eq!(report.config.jobs, 1);
    let note = report.config.note.as_deref().unwrap_or_default();
    assert!(note.contains("one execution at a time instead of 4"), "{note}");
    assert!(report.terminal_summary().contains(note));
    assert!(report.summary.complete && report.summary.stopped.is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn dynamic_reduction_loses_no_failure_on_the_recitation_edition() {
    let with = config("dwight recitation reduced");
    let without = Config { reduce: false, ..with.clone() };
    let (reduced, cinema) = explore(Edition::Recitation, "dwight_schrute", Oracle::Accepting, with).await;
    cinema.shutdown().await.unwrap();
    let (full, cinema) = explore(Edition::Recitation, "dwight_schrute", Oracle::Accepting, without).await;
    cinema.shutdown().await.unwrap();
    let failing = |report: &Report| -> BTreeSet<String> {
        report.executions.iter().filter(|e| e.outcome == Outcome::Fail).map(|e| e.id.clone()).collect()
    };
    let vulnerabilities = |report: &Report| -> BTreeSet<(String, Vec<cloture::CallSite>)> {
        report.vulnerabilities.iter().map(|v| (v.title.clone(), v.locations.clone())).collect()
    };
    assert!(reduced.summary.executions < full.summary.executions);
    assert_eq!(failing(&reduced), failing(&full), "{}\n{}", reduced.terminal_summary(), full.terminal_summary());
    assert_eq!(vulnerabilities(&reduced), vulnerabilities(&full));
    assert_eq!(reduced.vulnerabilities.len(), 3);
}

/// The whole `report.json` of the recitation edition (times redacted): a change to what the explorer
/// finds, or to the schema, shows here in review.
#[tokio::test(flavor = "current_thread")]
async fn the_recitation_report_as_a_snapshot() {
    let (report, cinema) = explore(Edition::Recitation, "chris_rivers", Oracle::Accepting, config("snapshot")).await;
    cinema.shutdown().await.unwrap();
    insta::assert_json_snapshot!("recitation_report", report, {
        ".summary.duration_ms" => "[ms]",
        ".executions[].duration_ms" => "[ms]",
    });
    insta::assert_snapshot!(
        "recitation_summary",
        report.terminal_summary().replace(&format!("{} ms", report.summary.duration_ms), "[ms] ms")
    );
}
