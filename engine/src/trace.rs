//! What an execution observed, as data: the calls made (with their typed outcomes), the crashes, and the
//! wire format of both between processes (the report a service sends to the coordinator, the plan header).
//!
//! Pure: no task-locals, no registries. [`crate::context`] records into these types while an execution
//! runs; the planner, the graph and the report read them afterwards.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::call::{CallKey, CallSite};
use crate::fault::Fault;

/// Header carrying the execution id between services.
pub const EXECUTION_HEADER: &str = "x-cloture-execution";
/// Header carrying the key of the call that delivered a request: the parent of the calls its handler makes.
pub const PARENT_HEADER: &str = "x-cloture-parent";
/// Header carrying the execution's fault plan (`key=fault,...`) to services in other processes.
pub const PLAN_HEADER: &str = "x-cloture-plan";
/// The service name under which the functional test's own calls are recorded.
pub const TEST_SERVICE: &str = "test";

/// How a call ended, as the caller saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Still running when the record was taken.
    Pending,
    /// A response with this status arrived (or was injected).
    Status(u16),
    /// A gRPC call ended with this status code (not `OK`), as the caller saw it (or it was injected).
    Grpc(u8),
    /// The call failed below HTTP: no response arrived.
    #[serde(rename = "error")]
    Transport(Transport),
}

/// How a call failed below HTTP. The planner compares these values, never their text: an injected fault
/// and a real failure of the same kind are the same answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// No connection: refused, or closed before any answer.
    Connect,
    /// No answer within the caller's time limit.
    Timeout,
    /// Any other failure to send the request or read the answer.
    Request,
}

impl Fault {
    /// The answer the caller sees at once when this fault is injected; `None` for the faults that slow a
    /// call down (`slow`, `delay:D`), whose answer depends on the caller's time limits.
    pub fn answer(self) -> Option<CallOutcome> {
        match self {
            Fault::Connect => Some(CallOutcome::Transport(Transport::Connect)),
            Fault::Timeout => Some(CallOutcome::Transport(Transport::Timeout)),
            Fault::Status(code) => Some(CallOutcome::Status(code)),
            Fault::Grpc(code) => Some(CallOutcome::Grpc(code)),
            Fault::Slow | Fault::Delay(_) => None,
        }
    }
}

/// What the caller knew of its time limit when it made a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TimeLimit {
    /// Not known: a call seen by a proxy (the caller's limit is in its own code).
    #[default]
    Unknown,
    /// The call has no time limit of its own (an outer one, e.g. `tokio::time::timeout`, may still hold).
    None,
    /// The call gives up after this long.
    Within(std::time::Duration),
}

impl TimeLimit {
    pub fn is_unknown(&self) -> bool {
        *self == TimeLimit::Unknown
    }
}

impl std::fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeLimit::Unknown => f.write_str("unknown"),
            TimeLimit::None => f.write_str("none"),
            TimeLimit::Within(limit) => write!(f, "{}ms", limit.as_millis()),
        }
    }
}

impl std::str::FromStr for TimeLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "unknown" => Ok(TimeLimit::Unknown),
            "none" => Ok(TimeLimit::None),
            _ => text
                .strip_suffix("ms")
                .and_then(|ms| ms.parse().ok())
                .map(|ms| TimeLimit::Within(std::time::Duration::from_millis(ms)))
                .ok_or_else(|| format!("time limit `{text}` is not `none`, `unknown` or a number of ms")),
        }
    }
}

serde_as_text!(TimeLimit);

/// One outbound call, as recorded by the caller's client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    pub key: CallKey,
    pub parent: CallKey,
    pub from: String,
    /// The target service, resolved from the address; replaced by the name the callee reports if it differs.
    pub to: String,
    pub method: String,
    pub path: String,
    pub site: CallSite,
    pub fault: Option<Fault>,
    pub outcome: CallOutcome,
    /// The caller's own time limit on the call, when known.
    #[serde(default, skip_serializing_if = "TimeLimit::is_unknown")]
    pub limit: TimeLimit,
}

/// A service that panicked or answered 500 from an unhandled error while handling a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    pub service: String,
    pub message: String,
    /// The panic or the `?` that let the error escape, when known.
    pub location: Option<CallSite>,
}

/// What one execution observed.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub calls: Vec<CallRecord>,
    pub crashes: Vec<Crash>,
    /// The answers the functional test's own calls got (in this process), by call key: what the reference
    /// run's answers are compared with; and the error answers (5xx) proxies passed on to services.
    pub answers: Vec<Answer>,
    /// The coordinator refused reports or lookups of this execution once it reached its bounds (calls or
    /// reports taken in from other processes, see docs/coordinator.md): what they carried is missing.
    pub truncated: bool,
    /// Calls made so far per call fingerprint (call identity under a parent), for call keys.
    pub(crate) counts: HashMap<u64, u32>,
    /// Reports taken in from other processes.
    pub(crate) reports: usize,
    /// Calls brought by a partial report: the next report of them replaces them.
    pub(crate) provisional: std::collections::HashSet<CallKey>,
}

impl Trace {
    /// Faults actually injected, in call order.
    pub fn injected(&self) -> impl Iterator<Item = (&CallRecord, Fault)> {
        self.calls.iter().filter_map(|call| call.fault.map(|fault| (call, fault)))
    }
}

/// What one service wrote to its log while an execution ran: its last lines (at most
/// [`ServiceLog::LINES`] lines and [`ServiceLog::BYTES`] bytes), made printable line by line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLog {
    pub service: String,
    pub lines: Vec<String>,
    /// Lines left out before the first one kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ServiceLog {
    /// The most lines kept of one service's log per execution.
    pub const LINES: usize = 40;
    /// The most bytes kept of one service's log per execution.
    pub const BYTES: usize = 4096;

    /// The last lines of `text` that `service` wrote, bounded; `None` when it wrote nothing but blanks.
    pub fn of(service: &str, text: &str) -> Option<ServiceLog> {
        let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
        let mut kept = Vec::new();
        let mut bytes = 0;
        for line in lines.iter().rev().take(ServiceLog::LINES) {
            let line = crate::text::without_ansi(line.trim_end()).replace('\t', "    ");
            let line = crate::text::bounded(&crate::text::printable(&line), 400);
            bytes += line.len();
            if bytes > ServiceLog::BYTES && !kept.is_empty() {
                break;
            }
            kept.push(line);
        }
        kept.reverse();
        let omitted = lines.len() - kept.len();
        (!kept.is_empty()).then(|| ServiceLog { service: service.to_string(), lines: kept, omitted })
    }

    /// Where the service's own code last failed, as its log shows it: the innermost frame of the last stack
    /// trace in the lines kept that is not in a library (Python's `File "app.py", line 75, in handler`,
    /// Node's `at handler (/srv/app.js:75:10)`, Java's `at shop.Cart.add(Cart.java:75)`). A path under the
    /// working directory is shown relative to it.
    pub fn raised_at(&self) -> Option<CallSite> {
        let library = |file: &str| {
            ["site-packages/", "dist-packages/", "/lib/python", "node_modules/", "node:", "<frozen", "<string>"]
                .iter()
                .any(|part| file.contains(part))
        };
        // Python: only the last traceback counts.
        let last_traceback = self.lines.iter().rposition(|line| line.starts_with("Traceback (")).unwrap_or(0);
        let frames: Vec<(usize, bool, CallSite)> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(at, line)| !java_library(line) && (*at >= last_traceback || !line.trim().starts_with("File \"")))
            .filter_map(|(at, line)| stack_frame(line).map(|(innermost_last, site)| (at, innermost_last, site)))
            .collect();
        let &(last, innermost_last, _) = frames.last()?;
        let frame = if innermost_last {
            // Python: the innermost frame is the last one of its traceback.
            frames.into_iter().rev().map(|(_, _, site)| site).find(|site| !library(&site.file))?
        } else {
            // Node, Java: the innermost frame comes first in the block of `at` lines that ends the trace.
            let mut start = last;
            while start > 0 && frames.iter().any(|(at, _, _)| *at == start - 1) {
                start -= 1;
            }
            let block = frames.into_iter().filter(|(at, _, _)| (start..=last).contains(at));
            block.map(|(_, _, site)| site).find(|site| !library(&site.file))?
        };
        let here = std::env::current_dir().ok();
        let relative = here.and_then(|dir| Some(frame.file.strip_prefix(&format!("{}/", dir.display()))?.to_string()));
        Some(CallSite { file: relative.unwrap_or(frame.file), ..frame })
    }

    /// The last lines that say something alone: not the `^^^^` lines under a line of a Python traceback,
    /// nor a web server's access log lines (`"GET /x HTTP/1.1" 500 -`).
    pub fn telling(&self, most: usize) -> Vec<&str> {
        let underline = |line: &str| line.trim().chars().all(|c| c.is_whitespace() || c == '^' || c == '~');
        // A line with no word says nothing alone either (`>` closing a repr, a row of dashes).
        let worded = |line: &str| line.chars().filter(|c| c.is_alphanumeric()).count() >= 2;
        let telling = |line: &&String| !underline(line) && !access_log(line) && worded(line);
        let mut last: Vec<&str> = self.lines.iter().rev().filter(telling).take(most).map(|l| l.trim()).collect();
        last.reverse();
        last
    }
}

/// Whether `line` is a Java stack frame of the platform or of a common library
/// (`at java.base/java.lang.Integer.parseInt(Integer.java:652)`).
fn java_library(line: &str) -> bool {
    let Some(frame) = line.trim().strip_prefix("at ") else { return false };
    let name = frame.split('(').next().unwrap_or("");
    let name = name.rsplit('/').next().unwrap_or(name);
    [
        "java.",
        "javax.",
        "jdk.",
        "sun.",
        "com.sun.",
        "kotlin.",
        "scala.",
        "org.springframework.",
        "org.apache.",
        "io.netty.",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// The place a line of a stack trace names, in Python's, Node's or Java's words, and whether the trace it
/// belongs to lists its innermost frame last (Python's) or first.
fn stack_frame(line: &str) -> Option<(bool, CallSite)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("File \"") {
        // Python: File "/srv/app.py", line 75, in handler
        let (file, rest) = rest.split_once("\", line ")?;
        let number = rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
        return Some((true, CallSite { file: file.to_string(), line: number, column: 0 }));
    }
    let rest = line.strip_prefix("at ")?;
    // Node: at handler (/srv/app.js:75:10), or at /srv/app.js:75:10; Java: at shop.Cart.add(Cart.java:75)
    let place = match (rest.rfind('('), rest.ends_with(')')) {
        (Some(open), true) => &rest[open + 1..rest.len() - 1],
        _ => rest,
    };
    let place = place.strip_prefix("file://").unwrap_or(place);
    let mut parts = place.rsplitn(3, ':');
    let (last, middle) = (parts.next()?, parts.next()?);
    let site = match (parts.next(), last.parse::<u32>(), middle.parse::<u32>()) {
        (Some(file), Ok(column), Ok(line)) if !file.is_empty() => CallSite { file: file.into(), line, column },
        (None, Ok(line), _) if !middle.is_empty() => CallSite { file: middle.into(), line, column: 0 },
        _ => return None,
    };
    Some((false, site))
}

/// Whether `line` is an access log line: a quoted request line (`"GET /x HTTP/1.1"`) followed by a status.
fn access_log(line: &str) -> bool {
    let Some(at) = line.find(" HTTP/") else { return false };
    let after = &line[at + 1..];
    let Some(quote) = after.find('"') else { return false };
    let rest = after[quote + 1..].trim_start();
    rest.len() >= 3 && rest.as_bytes()[..3].iter().all(u8::is_ascii_digit)
}

/// An answer a call got: status and body (its first [`Answer::KEPT`] bytes). Kept for the test's own
/// calls, and for the error answers (5xx) a proxy passed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub key: CallKey,
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Answer {
    /// How much of a body is kept to compare.
    pub const KEPT: usize = 64 * 1024;
}

/// What a service in another process observed while handling one request of an execution; it sends this
/// to the coordinator before answering, so the trace is complete when the test gets its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteReport {
    pub service: String,
    /// The key of the call that delivered the request.
    pub parent: CallKey,
    /// The status the service answered with (0 in a partial report).
    pub status: u16,
    /// Sent while the service still handles the request, because it holds a call (`slow`, `delay:D`):
    /// the calls so far, so that a hang is seen where it is. The full report follows if the service answers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    #[serde(default)]
    pub crashes: Vec<Crash>,
}

/// The plan as header text (`key=fault,...`, sorted); `None` for an empty plan.
pub(crate) fn plan_text(plan: &HashMap<CallKey, Fault>) -> Option<String> {
    if plan.is_empty() {
        return None;
    }
    let mut entries: Vec<String> = plan.iter().map(|(key, fault)| format!("{key}={fault}")).collect();
    entries.sort();
    Some(entries.join(","))
}

/// Parses a plan header (`key=fault,...`).
pub(crate) fn parse_plan(text: &str) -> Result<HashMap<CallKey, Fault>, String> {
    let mut plan = HashMap::new();
    for entry in text.split(',').filter(|e| !e.is_empty()) {
        let (key, fault) = entry.split_once('=').ok_or_else(|| format!("plan entry `{entry}` is not key=fault"))?;
        let fault: Fault = fault.parse().map_err(|e: crate::Error| e.to_string())?;
        plan.insert(key.parse::<CallKey>()?, fault);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_log_tells_where_the_service_s_own_code_raised() {
        let python = "Traceback (most recent call last):\n  File \"/srv/users/app.py\", line 75, in bookings\n    \
                      data = r.json()\n  File \"/venv/lib/python3.11/site-packages/requests/models.py\", line 975, \
                      in json\n    raise RequestsJSONDecodeError(e.msg, e.doc, e.pos)\nJSONDecodeError: Expecting value";
        let at = |text: &str| ServiceLog::of("users", text).and_then(|log| log.raised_at()).map(|s| s.to_string());
        assert_eq!(at(python).as_deref(), Some("/srv/users/app.py:75:0"));
        let node = "TypeError: Cannot read properties of undefined\n    at handler (/srv/front/app.js:42:17)\n    at \
                    Layer.handle (/srv/front/node_modules/express/lib/router/layer.js:95:5)\n    at node:internal/x:1:1";
        assert_eq!(at(node).as_deref(), Some("/srv/front/app.js:42:17"));
        let java = "java.lang.NullPointerException\n\tat shop.Cart.add(Cart.java:75)\n\tat shop.Main.main(Main.java:9)";
        assert_eq!(at(java).as_deref(), Some("Cart.java:75:0"));
        let parse = "java.lang.NumberFormatException: For input string: \"x\"\n\tat java.base/java.lang.Integer.\
                     parseInt(Integer.java:652)\n\tat shop.Cart.count(Cart.java:31)";
        assert_eq!(at(parse).as_deref(), Some("Cart.java:31:0"), "the platform's frames are not the service's");
        // An earlier traceback does not stand for the last one, all in libraries.
        let two = "Traceback (most recent call last):\n  File \"/srv/app.py\", line 9, in f\nKeyError: 'a'\n\
                   Traceback (most recent call last):\n  File \"/v/lib/python3.11/site-packages/x.py\", line 1, in g\n\
                   ValueError: b";
        assert_eq!(at(two).as_deref(), None);
        assert_eq!(at("127.0.0.1 - - \"GET / HTTP/1.1\" 500 -\nat noon: 12 eggs").as_deref(), None);
        let here = std::env::current_dir().unwrap().join("app.py");
        let relative = format!("  File \"{}\", line 3, in f\nKeyError: 'x'", here.display());
        assert_eq!(at(&relative).as_deref(), Some("app.py:3:0"));
    }

    #[test]
    fn a_service_log_keeps_the_last_lines_and_tells_the_error_not_the_access_log() {
        let text = "Traceback (most recent call last):\n  File \"front.py\", line 3, in both\n    total = numbers()\n            ^^^^^^^^^\nurllib.error.HTTPError: HTTP Error 503: Service Unavailable\n127.0.0.1 - - [02/Dec/2026 10:00:00] \"GET /both HTTP/1.1\" 500 -\n\n";
        let log = ServiceLog::of("front", text).expect("lines");
        assert_eq!(log.lines.len(), 6, "blank lines left out: {log:?}");
        assert_eq!(log.omitted, 0);
        assert_eq!(
            log.telling(2),
            ["total = numbers()", "urllib.error.HTTPError: HTTP Error 503: Service Unavailable"],
            "no underline, no access log line"
        );
        let long: String = (0..100).map(|n| format!("line {n}\n")).collect();
        let log = ServiceLog::of("back", &long).expect("lines");
        assert_eq!((log.lines.len(), log.omitted), (ServiceLog::LINES, 100 - ServiceLog::LINES));
        assert_eq!(log.lines.last().map(String::as_str), Some("line 99"));
        let wide = "x".repeat(300) + "\n";
        let log = ServiceLog::of("wide", &wide.repeat(40)).expect("lines");
        assert!(log.lines.iter().map(String::len).sum::<usize>() <= ServiceLog::BYTES, "{}", log.lines.len());
        assert_eq!(ServiceLog::of("quiet", "\n  \n"), None);
        let colours = "\u{1b}[35m\u{1b}[1mGET /x HTTP/1.1\u{1b}[0m\" 503 -\n\u{1b}]0;title\u{7}bell\u{7} \u{1b}c";
        assert_eq!(
            ServiceLog::of("escape", colours).expect("lines").lines,
            ["GET /x HTTP/1.1\" 503 -", "bell\\u{7} \\u{1b}c"]
        );
    }

    #[test]
    fn an_injected_fault_is_the_same_outcome_as_the_real_failure_of_its_kind() {
        assert_eq!(Fault::Timeout.answer(), Some(CallOutcome::Transport(Transport::Timeout)));
        assert_eq!(Fault::Connect.answer(), Some(CallOutcome::Transport(Transport::Connect)));
        assert_eq!(Fault::Status(503).answer(), Some(CallOutcome::Status(503)));
        assert_eq!(Fault::Slow.answer(), None, "a slow call's answer depends on the caller's limits");
    }

    #[test]
    fn time_limits_round_trip_through_text() {
        for limit in [TimeLimit::None, TimeLimit::Within(std::time::Duration::from_millis(250))] {
            assert_eq!(limit.to_string().parse::<TimeLimit>(), Ok(limit));
        }
    }

    #[test]
    fn transport_outcomes_keep_their_wire_form() {
        let text = serde_json::to_string(&CallOutcome::Transport(Transport::Timeout)).expect("serialises");
        assert_eq!(text, r#"{"error":"timeout"}"#);
        let back: CallOutcome = serde_json::from_str(r#"{"error":"connect"}"#).expect("parses");
        assert_eq!(back, CallOutcome::Transport(Transport::Connect));
        assert_eq!(serde_json::to_string(&CallOutcome::Status(500)).expect("serialises"), r#"{"status":500}"#);
        assert_eq!(serde_json::to_string(&CallOutcome::Grpc(14)).expect("serialises"), r#"{"grpc":14}"#);
    }
}
