//! The coordinator's HTTP API against a real coordinator on loopback, through a raw TCP client that writes
//! HTTP/1.1 by hand — so it can also send what no well-behaved client would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloture::context::Execution;
use cloture::coordinator::{Bounds, Coordinator};
use cloture::net::Limits;
use cloture::trace::{CallOutcome, Crash};
use cloture::{CallKey, Client, Fault};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The largest report body the coordinator takes (1 MiB).
const MAX_BODY: usize = 1 << 20;

/// One answer, as it came over the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
            panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(raw));
        });
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        Answer { status, head, body: raw[split + 4..].to_vec() }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON body, checking that it is announced as JSON.
    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Checks that this is an error answer with `status` and a non-empty `error` message.
    fn assert_error(&self, status: u16, context: &str) {
        assert_eq!(self.status, status, "{context}: {self:?}");
        let error = self.json()["error"].as_str().map(str::to_string);
        assert!(error.is_some_and(|e| !e.is_empty()), "{context}: no error message in {}", self.text());
    }
}

fn address(coordinator: &Coordinator) -> String {
    coordinator.url().strip_prefix("http://").expect("the coordinator's URL is http").to_string()
}

/// Writes `raw` on a fresh connection and reads until the coordinator closes it. Writing and reading run
/// together, so an answer sent before the request is fully written (413) is still read.
async fn exchange(address: &str, raw: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(address).await.expect("the coordinator accepts connections");
    let (mut reader, mut writer) = stream.into_split();
    let writing = async move {
        let _ = writer.write_all(&raw).await;
        writer // dropping the write half would half-close the connection before the answer
    };
    let reading = async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        answer
    };
    let both = async { tokio::join!(writing, reading) };
    let (_writer, answer) = tokio::time::timeout(Duration::from_secs(10), both).await.expect("an answer in time");
    answer
}

/// A request as a well-behaved client sends it, to the coordinator at `address` (also its `Host`).
fn request(address: &str, method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    request_with(address, method, target, &[("Content-Type", "application/json")], body)
}

/// A request with `Host: {address}` and `headers` besides its framing.
fn request_with(address: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

async fn send(coordinator: &Coordinator, method: &str, target: &str, body: &[u8]) -> Answer {
    let address = address(coordinator);
    Answer::parse(&exchange(&address, request(&address, method, target, body)).await)
}

async fn get(coordinator: &Coordinator, target: &str) -> Answer {
    send(coordinator, "GET", target, b"").await
}

async fn post_report(coordinator: &Coordinator, id: impl std::fmt::Display, body: &[u8]) -> Answer {
    send(coordinator, "POST", &format!("/v1/executions/{id}/report"), body).await
}

fn key(text: &str) -> CallKey {
    text.parse().expect("a call key")
}

fn is_call_key(text: &str) -> bool {
    text.len() == 16 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// A coordinator whose current execution has one root call (`test` → `users`), and that call's key.
async fn with_a_root_call(coordinator: &Coordinator, execution: &Arc<Execution>) -> String {
    coordinator.set_current(Some(execution.clone()));
    let answer = get(coordinator, "/v1/current?service=users&method=GET&path=/users/chris_rivers/bookings").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()["parent"].as_str().expect("a parent key").to_string()
}

/// A report from `users` on the request delivered by `parent`: one call to `bookings` that got an injected
/// 503, and a panic.
fn report_body(parent: &str) -> Value {
    json!({
        "service": "users",
        "parent": parent,
        "status": 500,
        "calls": [{
            "key": "00000000000000aa",
            "parent": parent,
            "from": "users",
            "to": "bookings",
            "method": "GET",
            "path": "/bookings/chris_rivers",
            "site": "cinema/src/users.rs:42:10",
            "fault": "status:503",
            "outcome": { "status": 503 },
        }],
        "crashes": [{
            "service": "users",
            "message": "called `Option::unwrap()` on a `None` value",
            "location": "cinema/src/users.rs:50:7",
        }],
    })
}

#[tokio::test]
async fn health_answers_200_with_status_ok() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator on a free port");
    let answer = get(&coordinator, "/v1/health").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), json!({ "status": "ok" }));
    // A well-behaved client outside any execution gets the same.
    let response = Client::new().get(format!("{}/v1/health", coordinator.url())).send().await.expect("an answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().expect("JSON"), json!({ "status": "ok" }));
    coordinator.shutdown().await;
}

#[tokio::test]
async fn current_answers_204_without_a_body_when_no_execution_is_current() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let answer = get(&coordinator, "/v1/current?service=users&method=GET&path=/users").await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(answer.body.is_empty(), "{answer:?}");
    // Set, then cleared again: back to 204.
    let execution = Execution::start(HashMap::new());
    coordinator.set_current(Some(execution.clone()));
    coordinator.set_current(None);
    let answer = get(&coordinator, "/v1/current?service=users&method=GET&path=/users").await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(answer.body.is_empty(), "{answer:?}");
    assert!(execution.trace().calls.is_empty());
}

#[tokio::test]
async fn current_refuses_missing_or_invalid_parameters_with_400_and_records_nothing() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let execution = Execution::start(HashMap::new());
    coordinator.set_current(Some(execution.clone()));
    let long_path = format!("/{}", "a".repeat(2048));
    for query in [
        "".to_string(),
        "?".to_string(),
        "?method=GET&path=/users".to_string(),
        "?service=users&path=/users".to_string(),
        "?service=users&method=GET".to_string(),
        "?service=&method=GET&path=/users".to_string(),
        "?service=%3Cscript%3E&method=GET&path=/users".to_string(),
        "?service=users%20x&method=GET&path=/users".to_string(),
        format!("?service={}&method=GET&path=/users", "s".repeat(65)),
        "?service=users&method=get&path=/users".to_string(),
        "?service=users&method=&path=/users".to_string(),
        "?service=users&method=GE%0AT&path=/users".to_string(),
        "?service=users&method=ABCDEFGHIJKLMNOPQ&path=/users".to_string(),
        "?service=users&method=GET&path=users".to_string(),
        "?service=users&method=GET&path=".to_string(),
        format!("?service=users&method=GET&path={long_path}"),
    ] {
        get(&coordinator, &format!("/v1/current{query}")).await.assert_error(400, &query);
    }
    assert!(execution.trace().calls.is_empty(), "a refused lookup registered a call");
    // The limits themselves are accepted.
    let answer = get(&coordinator, &format!("/v1/current?service={}&method=GET&path=/", "s".repeat(64))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = get(&coordinator, &format!("/v1/current?service=users&method=GET&path={}", &long_path[1..])).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let answer = get(&coordinator, &format!("/v1/current?service=users&method=GET&path={}", &long_path[..2048])).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(execution.trace().calls.len(), 2);
}

#[tokio::test]
async fn current_answers_the_execution_a_parent_key_and_the_plan_and_records_the_root_call() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let plan =
        HashMap::from([(key("00abcdef01234567"), Fault::Timeout), (key("0000000000000042"), Fault::Status(503))]);
    let execution = Execution::start(plan);
    coordinator.set_current(Some(execution.clone()));

    let answer =
        get(&coordinator, "/v1/current?service=users&method=GET&path=%2Fusers%2Fchris_rivers%2Fbookings%3Fx%3D1").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["execution"], json!(execution.id().to_string()));
    let parent = body["parent"].as_str().expect("parent is a string");
    assert!(is_call_key(parent), "{body}");
    assert_eq!(body["plan"], json!("0000000000000042=status:503,00abcdef01234567=timeout"));
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");

    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 1);
    let root = &trace.calls[0];
    assert_eq!(root.key, key(parent));
    assert_eq!(root.parent, CallKey::ROOT);
    assert_eq!((root.from.as_str(), root.to.as_str()), ("test", "users"));
    assert_eq!((root.method.as_str(), root.path.as_str()), ("GET", "/users/chris_rivers/bookings?x=1"));
    assert_eq!(root.fault, None, "the test's own requests are never faulted");
    assert_eq!(root.outcome, CallOutcome::Pending);

    // The same request again is another call, with its own key.
    let again = get(&coordinator, "/v1/current?service=users&method=GET&path=/users/chris_rivers/bookings?x=1").await;
    assert_eq!(again.status, 200, "{again:?}");
    let second = again.json()["parent"].as_str().expect("parent").to_string();
    assert_ne!(second, parent);
    assert_eq!(execution.trace().calls.len(), 2);

    // An empty plan travels as an empty string.
    let empty = Execution::start(HashMap::new());
    coordinator.set_current(Some(empty.clone()));
    let answer = get(&coordinator, "/v1/current?service=movies&method=POST&path=/movies").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json();
    assert_eq!(body["execution"], json!(empty.id().to_string()));
    assert_eq!(body["plan"], json!(""));
    assert_eq!(empty.trace().calls[0].from, "test");
    assert_eq!(execution.trace().calls.len(), 2, "the previous execution is not current any more");
}

#[tokio::test]
async fn a_valid_report_answers_204_and_its_calls_and_crashes_join_the_trace() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &execution).await;

    let body = serde_json::to_vec(&report_body(&parent)).expect("JSON");
    let answer = post_report(&coordinator, execution.id(), &body).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(answer.body.is_empty(), "{answer:?}");

    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 2);
    assert_eq!(trace.calls[0].to, "users");
    assert_eq!(trace.calls[0].outcome, CallOutcome::Status(500), "the root call learns the status it got");
    let call = &trace.calls[1];
    assert_eq!(call.key, key("00000000000000aa"));
    assert_eq!(call.parent, key(&parent));
    assert_eq!((call.from.as_str(), call.to.as_str()), ("users", "bookings"));
    assert_eq!(call.site.to_string(), "cinema/src/users.rs:42:10");
    assert_eq!(call.fault, Some(Fault::Status(503)));
    assert_eq!(call.outcome, CallOutcome::Status(503));
    assert_eq!(
        trace.crashes,
        vec![Crash {
            service: "users".into(),
            message: "called `Option::unwrap()` on a `None` value".into(),
            location: Some("cinema/src/users.rs:50:7".parse().unwrap()),
        }]
    );

    // A minimal report (no calls, no crashes) is valid too; it only completes the call that delivered it.
    let parent = with_a_root_call(&coordinator, &execution).await;
    let minimal = json!({ "service": "users", "parent": parent, "status": 200 });
    let answer = post_report(&coordinator, execution.id(), minimal.to_string().as_bytes()).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 3);
    assert_eq!(trace.calls[2].outcome, CallOutcome::Status(200));
    assert_eq!(trace.crashes.len(), 1);
}

#[tokio::test]
async fn a_report_to_an_unknown_execution_answers_404_and_changes_nothing() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &execution).await;
    let body = serde_json::to_vec(&report_body(&parent)).expect("JSON");
    let gone = {
        let finished = Execution::start(HashMap::new());
        finished.id()
    };
    for id in [gone.to_string(), "0".into(), "18446744073709551615".into(), "99999999999999999999".into(), "abc".into()]
    {
        post_report(&coordinator, &id, &body).await.assert_error(404, &id);
    }
    let answer = post_report(&coordinator, "", &body).await;
    answer.assert_error(404, "an empty id");
    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 1);
    assert_eq!(trace.calls[0].outcome, CallOutcome::Pending);
    assert!(trace.crashes.is_empty());
}

#[tokio::test]
async fn a_malformed_report_answers_400_and_changes_nothing() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &execution).await;
    let valid = report_body(&parent);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = valid.clone();
        change(&mut body);
        body.to_string().into_bytes()
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().expect("a report is an object").remove(field);
        body.to_string().into_bytes()
    };
    let truncated = valid.to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("an empty body", Vec::new()),
        ("not JSON", b"hello".to_vec()),
        ("truncated JSON", truncated.as_bytes()[..truncated.len() / 2].to_vec()),
        ("binary", vec![0, 159, 146, 150, 255]),
        ("a JSON array", b"[]".to_vec()),
        ("an unknown field", with(&|b| b["extra"] = json!(1))),
        ("no service", without("service")),
        ("no parent", without("parent")),
        ("no status", without("status")),
        ("a markup service name", with(&|b| b["service"] = json!("<script>"))),
        ("an empty service name", with(&|b| b["service"] = json!(""))),
        ("a service name with a space", with(&|b| b["service"] = json!("users x"))),
        ("a long service name", with(&|b| b["service"] = json!("s".repeat(65)))),
        ("status 42", with(&|b| b["status"] = json!(42))),
        ("status 600", with(&|b| b["status"] = json!(600))),
        ("status 99", with(&|b| b["status"] = json!(99))),
        ("a negative status", with(&|b| b["status"] = json!(-200))),
        ("a status beyond u16", with(&|b| b["status"] = json!(70000))),
        ("a textual status", with(&|b| b["status"] = json!("200"))),
        ("a short parent key", with(&|b| b["parent"] = json!("abc"))),
        ("a parent key that is not hex", with(&|b| b["parent"] = json!("zzzzzzzzzzzzzzzz"))),
        ("an unknown fault", with(&|b| b["calls"][0]["fault"] = json!("explode"))),
        ("a bad call site", with(&|b| b["calls"][0]["site"] = json!("nowhere"))),
        ("a bad outcome", with(&|b| b["calls"][0]["outcome"] = json!("exploded"))),
        ("calls that are not a list", with(&|b| b["calls"] = json!({}))),
    ];
    for (what, body) in cases {
        post_report(&coordinator, execution.id(), &body).await.assert_error(400, what);
    }
    let trace = execution.trace();
    assert_eq!(trace.calls.len(), 1);
    assert_eq!(trace.calls[0].outcome, CallOutcome::Pending);
    assert!(trace.crashes.is_empty());
}

#[tokio::test]
async fn a_report_body_over_1_mib_answers_413_and_changes_nothing() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &execution).await;
    let minimal = json!({ "service": "users", "parent": parent, "status": 200 }).to_string();
    let padded = |size: usize| {
        let mut body = minimal.clone().into_bytes();
        body.resize(size, b' ');
        body
    };

    let answer = post_report(&coordinator, execution.id(), &padded(MAX_BODY + 1)).await;
    answer.assert_error(413, "1 MiB + 1 byte");
    // Announced by its chunks rather than a Content-Length: the same.
    let mut chunked = format!(
        "POST /v1/executions/{}/report HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        execution.id(),
        address(&coordinator),
    )
    .into_bytes();
    for chunk in padded(2 * MAX_BODY).chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    Answer::parse(&exchange(&address(&coordinator), chunked).await).assert_error(413, "2 MiB in chunks");
    assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Pending);

    // Exactly 1 MiB is within the limit.
    let answer = post_report(&coordinator, execution.id(), &padded(MAX_BODY)).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Status(200));
}

#[tokio::test]
async fn a_wrong_method_answers_405() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let execution = Execution::start(HashMap::new());
    let id = execution.id();
    for (method, target, allowed) in [
        ("POST", "/v1/health".to_string(), "GET"),
        ("DELETE", "/v1/health".to_string(), "GET"),
        ("PUT", "/v1/current?service=users&method=GET&path=/".to_string(), "GET"),
        ("GET", format!("/v1/executions/{id}/report"), "POST"),
        ("PUT", format!("/v1/executions/{id}/report"), "POST"),
        ("POST", format!("/v1/executions/{id}/injected"), "GET"),
        ("HEAD", format!("/v1/executions/{id}/injected"), "GET"),
        ("POST", format!("/v1/executions/{id}"), "GET"),
        ("DELETE", format!("/v1/executions/{id}/references/total"), "GET, PUT"),
        ("POST", "/v1/runner/next".to_string(), "GET"),
        ("GET", format!("/v1/runner/{id}/verdict"), "POST"),
    ] {
        let answer = send(&coordinator, method, &target, b"{}").await;
        let context = format!("{method} {target}");
        assert_eq!(answer.status, 405, "{context}: {answer:?}");
        assert_eq!(answer.header("allow"), Some(allowed), "{context}: {answer:?}");
        if method != "HEAD" {
            answer.assert_error(405, &context);
        }
    }
    assert!(execution.trace().calls.is_empty());
}

#[tokio::test]
async fn an_unknown_path_answers_404() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    for target in [
        "/",
        "/health",
        "/v2/health",
        "/v1/health/",
        "/v1/health/extra",
        "/v1/executions",
        "/v1/executions/1",
        "/v1/executions/1/trace",
        "/v1/executions/1/report/extra",
        "/V1/HEALTH",
        "/v1/%68ealth",
    ] {
        get(&coordinator, target).await.assert_error(404, target);
    }
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_stop_the_coordinator() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let address = address(&coordinator);
    let garbage: [&[u8]; 7] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 a TLS hello",
        b"\x00\x00\x00\x00\xff\xfe\xfd\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"GET /v1/health HTTP/9.9\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for raw in garbage {
        // hyper answers what it cannot parse with a bare 400 and closes the connection.
        let answer = Answer::parse(&exchange(&address, raw.to_vec()).await);
        assert_eq!(answer.status, 400, "{:?} got {answer:?}", String::from_utf8_lossy(raw));
        assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    }
    // Half a request, then the client goes away.
    let mut stream = TcpStream::connect(&address).await.expect("connects");
    stream.write_all(b"POST /v1/executions/1/report HTTP/1.1\r\nContent-Length: 100\r\n\r\n{").await.expect("writes");
    drop(stream);
    // A header too long to buffer.
    let mut huge = b"GET /v1/health HTTP/1.1\r\nX-Junk: ".to_vec();
    huge.resize(2 * MAX_BODY, b'a');
    let answer = Answer::parse(&exchange(&address, huge).await);
    assert_eq!(answer.status, 431, "{answer:?}");

    let answer = get(&coordinator, "/v1/health").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), json!({ "status": "ok" }));
}

/// One call from the service `front` to the unregistered `127.0.0.1:1`, made inside `execution`.
async fn front_calls_back(execution: &Arc<Execution>) -> Result<cloture::client::Response, cloture::client::Error> {
    let call = Client::new().with_timeout(Duration::from_secs(2)).get("http://127.0.0.1:1/numbers").send();
    execution.root_context().with_service("front").scope(call).await
}

#[tokio::test]
async fn injected_reflects_the_faults_of_the_execution() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    // A fault-free run, to learn the call's key (keys are stable across runs).
    let reference = Execution::start(HashMap::new());
    let result = front_calls_back(&reference).await;
    assert!(result.is_err(), "nothing listens on port 1");
    let call_key = reference.trace().calls[0].key;
    for query in ["", "?service=127.0.0.1:1", "?service=front"] {
        let answer = get(&coordinator, &format!("/v1/executions/{}/injected{query}", reference.id())).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), json!({ "injected": false }), "{query}");
    }

    let execution = Execution::start(HashMap::from([(call_key, Fault::Status(503))]));
    let injected = format!("/v1/executions/{}/injected", execution.id());
    let answer = get(&coordinator, &injected).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json(), json!({ "injected": false }), "nothing was called yet");
    let response = front_calls_back(&execution).await.expect("an injected status is an answer");
    assert_eq!(response.status(), 503);
    assert_eq!(execution.trace().calls[0].key, call_key);
    for (query, expected) in
        [("", true), ("?service=127.0.0.1%3A1", true), ("?service=front", false), ("?service=%3Cscript%3E", false)]
    {
        let answer = get(&coordinator, &format!("{injected}{query}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), json!({ "injected": expected }), "{query}");
    }

    // Faults that services of other processes report count too.
    let other = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &other).await;
    let answer = get(&coordinator, &format!("/v1/executions/{}/injected", other.id())).await;
    assert_eq!(answer.json(), json!({ "injected": false }));
    let body = serde_json::to_vec(&report_body(&parent)).expect("JSON");
    assert_eq!(post_report(&coordinator, other.id(), &body).await.status, 204);
    for (query, expected) in [("", true), ("?service=bookings", true), ("?service=users", false)] {
        let answer = get(&coordinator, &format!("/v1/executions/{}/injected{query}", other.id())).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), json!({ "injected": expected }), "{query}");
    }

    get(&coordinator, "/v1/executions/0/injected").await.assert_error(404, "execution 0");
    get(&coordinator, "/v1/executions/abc/injected").await.assert_error(404, "execution abc");
}

#[tokio::test]
async fn the_coordinator_refuses_a_listener_that_is_not_on_loopback() {
    // Bound only to check the refusal: nothing is sent to it.
    let listener = TcpListener::bind("0.0.0.0:0").await.expect("a listener on every interface");
    let error = Coordinator::start(listener).err().expect("a non-loopback listener is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn after_shutdown_the_coordinator_accepts_no_connections() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let address = address(&coordinator);
    assert_eq!(get(&coordinator, "/v1/health").await.status, 200);
    coordinator.shutdown().await;
    assert!(TcpStream::connect(&address).await.is_err(), "{address} still accepts connections");
}

// ---- bounds on connections (D4), on what one execution takes in (D5), and browser refusals (D19) ----

/// A coordinator within `bounds`, and its address.
async fn bounded(bounds: Bounds) -> (Coordinator, String) {
    let coordinator = Coordinator::bind_with(0, bounds).await.expect("a coordinator");
    let address = address(&coordinator);
    (coordinator, address)
}

/// Connection limits with short timeouts, for tests.
fn limits(max_connections: usize, header: Duration, idle: Duration) -> Limits {
    Limits { max_connections, header_timeout: header, idle_timeout: idle, ..Limits::default() }
}

/// Reads one answer (head, then a `Content-Length` body) from a connection that stays open.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let mut buffer = [0; 4096];
    let reading = async {
        loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let answer = Answer::parse(&raw);
                let length: usize = answer.header("content-length").map_or(0, |n| n.parse().expect("a length"));
                if raw.len() >= split + 4 + length {
                    return answer;
                }
            }
            let n = stream.read(&mut buffer).await.expect("the connection stays open until the answer");
            assert!(n > 0, "closed before a whole answer: {:?}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reading).await.expect("an answer in time")
}

/// Waits until the coordinator closes `stream` (end of stream or reset), discarding what it reads; the
/// time it took.
async fn closed_after(stream: &mut TcpStream, started: Instant) -> Duration {
    let mut buffer = [0; 4096];
    let waiting = async { while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {} };
    tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the connection is closed in time");
    started.elapsed()
}

#[tokio::test]
async fn d4_idle_connections_are_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let connections = limits(16, Duration::from_secs(5), idle);
    let (_coordinator, address) = bounded(Bounds { connections, ..Bounds::default() }).await;
    // One connection that never sends a byte, one kept alive after an answer.
    let mut silent = TcpStream::connect(&address).await.expect("connects");
    let mut kept = TcpStream::connect(&address).await.expect("connects");
    kept.write_all(format!("GET /v1/health HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes()).await.expect("writes");
    assert_eq!(read_answer(&mut kept).await.status, 200);
    let started = Instant::now();
    for stream in [&mut silent, &mut kept] {
        let elapsed = closed_after(stream, started).await;
        // Not before the idle timeout (less what passed before `started`), well before the header timeout.
        assert!(elapsed >= idle / 2 && elapsed < Duration::from_secs(4), "closed after {elapsed:?}");
    }
}

#[tokio::test]
async fn d4_a_request_head_that_trickles_in_is_cut_off_after_the_header_timeout() {
    let header = Duration::from_millis(500);
    let connections = limits(16, header, Duration::from_secs(30));
    let (_coordinator, address) = bounded(Bounds { connections, ..Bounds::default() }).await;
    let stream = TcpStream::connect(&address).await.expect("connects");
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let trickling = tokio::spawn(async move {
        // One header line every 100 ms, for at most 6 s.
        let _ = writer.write_all(b"GET /v1/health HTTP/1.1\r\n").await;
        for i in 0..60 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut buffer = [0; 1024];
    let waiting = async { while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {} };
    tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the connection is closed in time");
    let elapsed = started.elapsed();
    assert!(elapsed >= header * 8 / 10 && elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
    trickling.abort();
}

#[tokio::test]
async fn d4_a_report_body_that_stops_arriving_answers_408_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let connections = limits(16, Duration::from_secs(5), idle);
    let (_coordinator, address) = bounded(Bounds { connections, ..Bounds::default() }).await;
    let execution = Execution::start(HashMap::new());
    let mut stream = TcpStream::connect(&address).await.expect("connects");
    let head = format!(
        "POST /v1/executions/{}/report HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{",
        execution.id()
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let started = Instant::now();
    let answer = read_answer(&mut stream).await;
    answer.assert_error(408, "a body that stopped after one byte");
    assert!(started.elapsed() >= idle * 8 / 10, "answered after {:?}", started.elapsed());
    assert!(answer.json()["error"].as_str().is_some_and(|e| e.contains("stopped arriving")), "{answer:?}");
}

/// A connection that sent the first line of a request and nothing more: it holds a slot, and is not idle.
async fn half_a_head(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream.write_all(b"GET /v1/health HTTP/1.1\r\n").await.expect("writes");
    stream
}

#[tokio::test]
async fn d4_connections_beyond_the_limit_do_not_stop_the_coordinator() {
    let connections = limits(4, Duration::from_secs(30), Duration::from_secs(30));
    let (coordinator, address) = bounded(Bounds { connections, ..Bounds::default() }).await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(half_a_head(&address).await);
    }
    // Twenty more requests: they wait for a slot, none is answered while the slow ones hold every slot.
    let waiting: Vec<_> = (0..20)
        .map(|_| {
            let address = address.clone();
            tokio::spawn(async move {
                let raw = request(&address, "GET", "/v1/health", b"");
                Answer::parse(&exchange(&address, raw).await)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(waiting.iter().all(|task| !task.is_finished()), "a request was served beyond the limit");
    assert!(coordinator.health().waits_for_a_slot() >= 1, "the wait for a slot was not counted");
    assert_eq!(coordinator.accept_failures(), 0);
    // The slow connections go away: every waiting request is served.
    drop(slow);
    for task in waiting {
        assert_eq!(task.await.expect("the request task ends").status, 200);
    }
    assert_eq!(get(&coordinator, "/v1/health").await.status, 200);
}

#[tokio::test]
async fn d4_idle_connections_make_room_when_every_slot_is_taken() {
    let connections = limits(4, Duration::from_secs(30), Duration::from_secs(30));
    let (coordinator, address) = bounded(Bounds { connections, ..Bounds::default() }).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&address).await.expect("connects"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let answer = get(&coordinator, "/v1/health").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "served only after {:?}", started.elapsed());
    assert!(coordinator.health().waits_for_a_slot() >= 1);
    // At least one idle connection was closed to make room.
    let mut closed = 0;
    for stream in &mut idle {
        let mut buffer = [0; 16];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle connection was closed");
}

/// A report from `users` on the request delivered by `parent`, with `n` calls of its own.
fn report_with_calls(parent: &str, n: usize) -> Vec<u8> {
    let calls: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "key": format!("{:016x}", 0x100 + i), "parent": parent, "from": "users", "to": "bookings",
                "method": "GET", "path": format!("/bookings/{i}"), "site": "cinema/src/users.rs:42:10",
                "fault": null, "outcome": { "status": 200 },
            })
        })
        .collect();
    json!({ "service": "users", "parent": parent, "status": 200, "calls": calls }).to_string().into_bytes()
}

#[tokio::test]
async fn d5_an_execution_takes_at_most_its_bound_of_reports() {
    let (coordinator, _) = bounded(Bounds { reports_per_execution: 3, ..Bounds::default() }).await;
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &execution).await;
    for _ in 0..3 {
        assert_eq!(post_report(&coordinator, execution.id(), &report_with_calls(&parent, 1)).await.status, 204);
    }
    assert!(!execution.truncated());
    let answer = post_report(&coordinator, execution.id(), &report_with_calls(&parent, 1)).await;
    answer.assert_error(429, "a fourth report");
    let error = answer.json()["error"].as_str().expect("a message").to_string();
    assert!(error.contains("bound of 3 reports") && error.contains("truncated"), "{error}");
    assert!(execution.truncated());
    let trace = execution.trace();
    assert!(trace.truncated);
    assert_eq!(trace.calls.len(), 4, "the refused report added its call");
    // The bound is per execution: the next one takes reports again.
    let next = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &next).await;
    assert_eq!(post_report(&coordinator, next.id(), &report_with_calls(&parent, 1)).await.status, 204);
    assert!(!next.truncated());
}

#[tokio::test]
async fn d5_an_execution_takes_at_most_its_bound_of_calls_from_reports_and_lookups() {
    let (coordinator, _) = bounded(Bounds { calls_per_execution: 6, ..Bounds::default() }).await;
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(&coordinator, &execution).await;
    // 1 root call + 5 reported = 6: exactly the bound is taken in.
    assert_eq!(post_report(&coordinator, execution.id(), &report_with_calls(&parent, 5)).await.status, 204);
    assert!(!execution.truncated());
    // One more call, by a report or by a lookup, is refused.
    let answer = post_report(&coordinator, execution.id(), &report_with_calls(&parent, 1)).await;
    answer.assert_error(429, "a report past the bound of calls");
    assert!(answer.json()["error"].as_str().is_some_and(|e| e.contains("bound of 6 calls")), "{answer:?}");
    let answer = get(&coordinator, "/v1/current?service=users&method=GET&path=/users").await;
    answer.assert_error(429, "a lookup past the bound of calls");
    assert!(execution.truncated());
    assert_eq!(execution.trace().calls.len(), 6);
}

/// A minimal report for the root call of a fresh execution, as raw bytes with `headers`.
async fn report_request(coordinator: &Coordinator, headers: &[(&str, &str)]) -> (Arc<Execution>, Answer) {
    let execution = Execution::start(HashMap::new());
    let parent = with_a_root_call(coordinator, &execution).await;
    let body = json!({ "service": "users", "parent": parent, "status": 200 }).to_string();
    let address = address(coordinator);
    let target = format!("/v1/executions/{}/report", execution.id());
    let raw = request_with(&address, "POST", &target, headers, body.as_bytes());
    let answer = Answer::parse(&exchange(&address, raw).await);
    (execution, answer)
}

#[tokio::test]
async fn d19_a_cross_origin_simple_request_is_refused() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let json = ("Content-Type", "application/json");
    for headers in [
        vec![("Content-Type", "text/plain"), ("Origin", "http://attacker.example")],
        vec![json, ("Origin", "http://attacker.example")],
        vec![json, ("Origin", "null")],
        vec![json, ("Sec-Fetch-Site", "cross-site")],
        vec![json, ("Sec-Fetch-Site", "same-site")],
    ] {
        let (execution, answer) = report_request(&coordinator, &headers).await;
        answer.assert_error(403, &format!("{headers:?}"));
        assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Pending, "{headers:?} changed the trace");
    }
    // A lookup from a page registers nothing either.
    let execution = Execution::start(HashMap::new());
    coordinator.set_current(Some(execution.clone()));
    let address = address(&coordinator);
    let raw = request_with(&address, "GET", "/v1/health", &[("Origin", "http://attacker.example")], b"");
    Answer::parse(&exchange(&address, raw).await).assert_error(403, "health from a page");
    let target = "/v1/current?service=users&method=GET&path=/users";
    let raw = request_with(&address, "GET", target, &[("Sec-Fetch-Site", "cross-site")], b"");
    Answer::parse(&exchange(&address, raw).await).assert_error(403, "a lookup from a page");
    assert!(execution.trace().calls.is_empty());
    // What is not browser-originated passes.
    for headers in [vec![json, ("Sec-Fetch-Site", "same-origin")], vec![json, ("Sec-Fetch-Site", "none")]] {
        let (_, answer) = report_request(&coordinator, &headers).await;
        assert_eq!(answer.status, 204, "{headers:?}: {answer:?}");
    }
}

#[tokio::test]
async fn d19_a_form_content_type_is_refused() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        Some("application/jsonx"),
        Some("text/json"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type.map(|value| ("Content-Type", value)).into_iter().collect();
        let (execution, answer) = report_request(&coordinator, &headers).await;
        answer.assert_error(415, &format!("{content_type:?}"));
        assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Pending, "{content_type:?} changed the trace");
    }
    for content_type in ["application/json; charset=utf-8", "Application/JSON", "application/json ;charset=UTF-8"] {
        let (execution, answer) = report_request(&coordinator, &[("Content-Type", content_type)]).await;
        assert_eq!(answer.status, 204, "{content_type}: {answer:?}");
        assert_eq!(execution.trace().calls[0].outcome, CallOutcome::Status(200));
    }
}

#[tokio::test]
async fn d19_a_host_other_than_the_coordinator_is_refused() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let address = address(&coordinator);
    let port = coordinator.url().rsplit(':').next().expect("a port").parse::<u16>().expect("a port number");
    let raw_with_host = |host: Option<String>| {
        let host = host.map(|host| format!("Host: {host}\r\n")).unwrap_or_default();
        format!("GET /v1/health HTTP/1.1\r\n{host}Connection: close\r\n\r\n").into_bytes()
    };
    for host in [
        Some(format!("attacker.example:{port}")),
        Some(format!("127.0.0.1:{}", port.wrapping_add(1))),
        Some("127.0.0.1".to_string()),
        Some(format!("127.0.0.1:{port}.attacker.example")),
        Some(format!("localhost.attacker.example:{port}")),
        Some(format!("[::2]:{port}")),
        None,
    ] {
        let answer = Answer::parse(&exchange(&address, raw_with_host(host.clone())).await);
        answer.assert_error(403, &format!("{host:?}"));
    }
    for host in
        [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("LocalHost:{port}"), format!("[::1]:{port}")]
    {
        let answer = Answer::parse(&exchange(&address, raw_with_host(Some(host.clone()))).await);
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
    }
}

#[tokio::test]
async fn injected_asks_by_method_and_an_execution_says_whether_it_is_fault_free() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let reference = Execution::start(HashMap::new());
    let _ = front_calls_back(&reference).await;
    let call_key = reference.trace().calls[0].key;
    let execution = Execution::start(HashMap::from([(call_key, Fault::Status(503))]));
    front_calls_back(&execution).await.expect("an injected status is an answer");
    let injected = format!("/v1/executions/{}/injected", execution.id());
    for (query, expected) in [
        ("?method=GET", true),
        ("?method=get", true),
        ("?method=POST", false),
        ("?method=GET&service=127.0.0.1%3A1", true),
        ("?method=GET&service=front", false),
    ] {
        let answer = get(&coordinator, &format!("{injected}{query}")).await;
        assert_eq!(answer.json(), json!({ "injected": expected }), "{query}");
    }
    let answer = get(&coordinator, &format!("/v1/executions/{}", execution.id())).await;
    assert_eq!(
        answer.json(),
        json!({ "execution": execution.id().to_string(), "fault_free": false, "injected": true })
    );
    let answer = get(&coordinator, &format!("/v1/executions/{}", reference.id())).await;
    assert_eq!(
        answer.json(),
        json!({ "execution": reference.id().to_string(), "fault_free": true, "injected": false })
    );
    get(&coordinator, "/v1/executions/0").await.assert_error(404, "execution 0");
}

#[tokio::test]
async fn fault_free_executions_save_reference_values_that_faulted_ones_read() {
    let coordinator = Coordinator::bind(0).await.expect("a coordinator");
    let fault_free = Execution::start(HashMap::new());
    let faulted = Execution::start(HashMap::from([(key("00000000000000aa"), Fault::Connect)]));
    let at = |execution: &Arc<Execution>, name: &str| format!("/v1/executions/{}/references/{name}", execution.id());

    get(&coordinator, &at(&faulted, "total")).await.assert_error(404, "nothing saved yet");
    send(&coordinator, "PUT", &at(&faulted, "total"), b"{\"total\":0}").await.assert_error(409, "under faults");
    let saved = send(&coordinator, "PUT", &at(&fault_free, "total"), b"{\"total\":6}").await;
    assert_eq!(saved.status, 204, "{saved:?}");
    let read = get(&coordinator, &at(&faulted, "total")).await;
    assert_eq!(read.json(), json!({ "value": { "total": 6 } }));
    assert_eq!(coordinator.references().get("total"), Some(&json!({ "total": 6 })));

    send(&coordinator, "PUT", &at(&fault_free, "a%2Fb"), b"1").await.assert_error(400, "a name with a slash");
    send(&coordinator, "PUT", &at(&fault_free, "x"), b"{not json").await.assert_error(400, "not JSON");
    let address = address(&coordinator);
    let form = request_with(&address, "PUT", &at(&fault_free, "x"), &[("Content-Type", "text/plain")], b"1");
    Answer::parse(&exchange(&address, form).await).assert_error(415, "not JSON by its type");

    // Another fault-free execution that sees something else: no one value to compare with any more.
    let again = Execution::start(HashMap::new());
    assert_eq!(send(&coordinator, "PUT", &at(&again, "total"), b"{\"total\":7}").await.status, 204);
    get(&coordinator, &at(&faulted, "total")).await.assert_error(409, "unstable");
    assert!(coordinator.references().is_empty());
}

#[tokio::test]
async fn a_runner_s_poll_ends_empty_and_a_verdict_for_no_offered_execution_is_refused() {
    let bounds = Bounds { runner_poll: Duration::from_millis(50), ..Bounds::default() };
    let coordinator = Coordinator::bind_with(0, bounds).await.expect("a coordinator");
    let started = Instant::now();
    let answer = get(&coordinator, "/v1/runner/next").await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(50), "{:?}", started.elapsed());
    let verdict = br#"{"passed": true}"#;
    send(&coordinator, "POST", "/v1/runner/12/verdict", verdict).await.assert_error(404, "nothing offered");
    send(&coordinator, "POST", "/v1/runner/abc/verdict", verdict).await.assert_error(404, "not an id");
    send(&coordinator, "POST", "/v1/runner/12/verdict", b"{\"passed\": 1}").await.assert_error(400, "not a verdict");
}
