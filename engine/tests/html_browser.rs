//! The HTML report in a real browser: a cinema exploration (fixture `fixtures/cinema_report.json`, with a
//! stand-in for `cinema/src/users/recitation.rs`, and two regions of it added: one first covered by a fault
//! run on a line the test covered, one never run) is rendered to a file and opened in headless Chromium.
//! The DOM after the page's script ran must show the vulnerabilities, the call graph and the annotated
//! source; the script must run without errors and its filters must work; a screenshot must be produced.
//!
//! Needs `/usr/bin/chromium` (Debian package `chromium`; CI installs it). Set `CLOTURE_HTML_SCREENSHOT` to
//! a `.png` path to keep the screenshot (and the page, next to it as `.html`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cloture::report::{NewRegion, RegionChange, RegionCounts, Report, SourceRange};

const CHROMIUM: &str = "/usr/bin/chromium";
const REPORT: &str = include_str!("fixtures/cinema_report.json");
const RECITATION: &str = include_str!("fixtures/users_recitation.rs.txt");
const RECITATION_PATH: &str = "cinema/src/users/recitation.rs";

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("cloture-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `url` with `args`, in a fresh profile, killing it past `limit`.
fn chromium(url: &str, args: &[&str], limit: Duration) -> Output {
    let profile = TempDir::new("chromium-profile");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-extensions",
            "--mute-audio",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {CHROMIUM}: {error}"));
    // Read the pipes on threads so a chatty browser cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut bytes).map(|_| bytes).unwrap_or_default()
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut bytes).map(|_| bytes).unwrap_or_default()
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// What the page said on the console (Chromium logs every console message, uncaught exception and blocked
/// load as `...:CONSOLE...` on stderr). The page itself never logs, so any such line is a problem.
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|line| line.contains(":CONSOLE") || line.contains("Uncaught")).collect()
}

/// The `<tr ...>` start tags of the execution rows in a dumped DOM.
fn execution_rows(dom: &str) -> Vec<&str> {
    dom.match_indices("<tr class=\"exec ")
        .map(|(start, _)| &dom[start..start + dom[start..].find('>').unwrap()])
        .collect()
}

fn assert_dom_ok(dom: &str, stderr: &str) {
    assert!(
        dom.contains("data-script=\"ok\""),
        "the page's script did not finish cleanly: {}",
        &dom[..dom.len().min(600)]
    );
    let errors = page_errors(stderr);
    assert!(errors.is_empty(), "the page logged errors:\n{}", errors.join("\n"));
}

/// `[line, column]` of `what` in line `line` of the stand-in source, and just past it.
fn columns(line: u32, what: &str) -> ((u32, u32), (u32, u32)) {
    let text = RECITATION.lines().nth(line as usize - 1).expect("the line exists");
    let start = text.find(what).expect("the text is on the line") as u32 + 1;
    ((line, start), (line, start + what.len() as u32))
}

/// On line 51 (covered by the test) the 404 comparison first ran in execution c3d9a0e1b257; on line 54
/// (covered) the `expect` never panicked; and the file's region counts.
fn add_regions(report: &mut Report) {
    let coverage = report.coverage.as_mut().expect("the fixture has coverage");
    let file = coverage.files.get_mut(RECITATION_PATH).expect("the fixture covers the users source");
    let (start, end) = columns(51, "== StatusCode::NOT_FOUND");
    file.newly_covered_regions = vec![NewRegion { start, end, execution: "c3d9a0e1b257".into() }];
    let (start, end) = columns(54, ".expect(\"bookings answers its JSON\")");
    file.uncovered_regions = vec![SourceRange { start, end }];
    file.regions = Some(RegionChange {
        before: RegionCounts { covered: 60, total: 80 },
        after: RegionCounts { covered: 61, total: 80 },
    });
}

#[test]
fn cinema_report_renders_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it (`apt-get install -y chromium`) to run the HTML report's browser test"
    );
    let mut report: Report = serde_json::from_str(REPORT).expect("the fixture is a cloture.report/1 report");
    add_regions(&mut report);
    let sources: BTreeMap<String, String> =
        [(RECITATION_PATH.to_string(), RECITATION.to_string())].into_iter().collect();
    let html = cloture::html::render(&report, &sources);
    let dir = TempDir::new("html-report");
    let page = dir.0.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = file_url(&page);
    let limit = Duration::from_secs(20);

    // What a person sees once the script ran.
    let run = chromium(&url, &["--dump-dom"], limit);
    assert!(run.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&run.stderr));
    let dom = String::from_utf8(run.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_dom_ok(&dom, &stderr);
    assert!(dom.contains("<h1>cinema_faults::user_bookings</h1>"));
    assert!(dom.contains("<b>edition</b> recitation"));
    for id in ["V1", "V2", "V3"] {
        assert!(dom.contains(&format!("id=\"vuln-{id}\"")), "vulnerability {id} is missing");
    }
    assert!(dom.contains("users crashes when bookings answers status:500, status:502, status:503"));
    assert!(dom.contains("users crashes when bookings or movies answers timeout"));
    assert!(dom.contains("CLOTURE_REPLAY=a41f07c29b13 cargo test -p cinema-tests --test cinema_faults</code><button"));
    // The panic location links into the annotated source.
    assert!(dom.contains("href=\"#src-0-L54\""), "V1's failure location links to its line");

    // The call graph: four services, five call sites coloured by outcome, arrows with markers.
    assert!(dom.contains("<svg class=\"callgraph\""));
    assert_eq!(dom.matches("<g class=\"node service").count(), 4);
    assert_eq!(dom.matches("<g class=\"node site fail\"").count(), 2, "the bookings and movies call sites failed");
    assert_eq!(dom.matches("<g class=\"node site ok\"").count(), 1, "the suggestions call site handled its faults");
    assert_eq!(dom.matches("<g class=\"node site never\"").count(), 2, "the test's own calls are never faulted");
    assert_eq!(dom.matches("marker-end=\"url(#arrow-").count(), 5);
    for service in ["test", "users", "bookings", "movies"] {
        assert!(dom.contains(&format!("text-anchor=\"middle\">{service}</text>")), "service {service} is not drawn");
    }
    assert!(dom.contains(">recitation.rs:41:10</text>"));

    // The annotated users source.
    let row = |line: u32| -> &str {
        let start = dom.find(&format!("<tr id=\"src-0-L{line}\"")).unwrap_or_else(|| panic!("no row for line {line}"));
        &dom[start..start + dom[start..].find("</tr>").unwrap()]
    };
    assert!(row(41).contains("class=\"cov-before\""), "the bookings call is covered by the functional test");
    assert!(row(41).contains("call site"));
    assert!(row(49).contains("class=\"cov-fault\"") && row(49).contains("href=\"#exec-e8b5f1a7034c\""));
    assert!(row(49).contains("V3 fails here"));
    assert!(row(54).contains("V1 fails here"));
    assert!(row(80).contains("class=\"cov-never\""), "first_title is never called");
    assert!(
        row(51).contains("<a class=\"reg-fault\" href=\"#exec-c3d9a0e1b257\"")
            && row(51).contains(">== StatusCode::NOT_FOUND</a> {</td>"),
        "a region first covered by a fault run on a covered line links to its execution: {}",
        row(51)
    );
    assert!(row(51).contains("<a class=\"by\" href=\"#exec-c3d9a0e1b257\""));
    assert!(row(54).contains("<span class=\"reg-never\" title=\"this region never ran, though its line did\">.expect("));
    assert!(dom.contains("regions 60/80 → 61/80"), "the file's summary gives its regions");
    assert!(dom.contains("a region that never ran on a line that did"), "the legend explains the region marks");
    assert!(row(1).contains("class=\"cov-none\""));
    assert!(dom.contains("panic!(\"bookings did not answer: {error}\")"));

    // Executions: all shown, with the count the script wrote.
    let rows = execution_rows(&dom);
    assert_eq!(rows.len(), report.executions.len());
    assert!(rows.iter().all(|row| !row.contains("hidden")));
    assert!(dom.contains(&format!("<span id=\"filter-count\" class=\"muted\">{} executions</span>", rows.len())));

    // The filters work (prefilled from the address): failing executions that mention a timeout.
    let filtered = chromium(&format!("{url}?q=timeout&outcome=fail"), &["--dump-dom"], limit);
    let filtered_dom = String::from_utf8(filtered.stdout).unwrap();
    assert_dom_ok(&filtered_dom, &String::from_utf8_lossy(&filtered.stderr));
    let visible: Vec<&str> = execution_rows(&filtered_dom).into_iter().filter(|row| !row.contains("hidden")).collect();
    assert_eq!(visible.len(), 2, "two failing executions mention a timeout: {visible:#?}");
    assert!(visible.iter().all(|row| row.contains("data-outcome=\"fail\"")));
    assert!(filtered_dom.contains("2 of 16 executions shown"));

    // A picture a person can look at.
    let shot = dir.0.join("report.png");
    let run = chromium(
        &url,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,3000", "--hide-scrollbars"],
        limit,
    );
    assert!(run.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&run.stderr));
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    assert!(png.len() > 50_000, "the screenshot is suspiciously small ({} bytes)", png.len());
    let errors = page_errors(&String::from_utf8_lossy(&run.stderr)).into_iter().map(str::to_string).collect::<Vec<_>>();
    assert!(errors.is_empty(), "the page logged errors:\n{}", errors.join("\n"));
    if let Ok(keep) = std::env::var("CLOTURE_HTML_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("copy the screenshot");
        std::fs::write(Path::new(&keep).with_extension("html"), &html).expect("keep the page");
    }
}
