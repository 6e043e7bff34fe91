//! The coordinator's HTTP API against a real coordinator on loopback, through a raw TCP client that writes
//! HTTP/1.1 by hand — so it can also send what no well-behaved client would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloture::context::Execution;
use cloture::coordinator::Coordinator;
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
