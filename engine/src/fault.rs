//! The faults cloture injects and the catalog that says which apply to which service.
//!
//! Fault names are a tiny text language: `connect`, `timeout`, `slow`, `delay:250ms`, `status:NNN`, and
//! for gRPC calls `grpc:CODE` (`grpc:UNAVAILABLE`). The catalog adds, per callee (or per callee and path,
//! e.g. one gRPC method), the error statuses that service is known to return (e.g. `bookings: status:404`,
//! `inventory/shop.Inventory/Reserve: grpc:RESOURCE_EXHAUSTED`), read from a file a source scan generates
//! and a user can edit. Pure code: parsing and lookup, no I/O beyond `Catalog::load`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// One fault at one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The connection is refused: no request reaches the callee.
    Connect,
    /// The call times out. Returned at once: nothing waits. Injected only into calls that have a time
    /// limit (where none is set, a timeout cannot happen: `slow` shows what does).
    Timeout,
    /// The callee is slow: it answers later than any time limit or deadline. A call with a time limit gets
    /// its timeout; a call without one waits, and the execution hangs. In-process, the wait is virtual.
    Slow,
    /// The callee answers after this delay (then as it would).
    Delay(Duration),
    /// The callee answers with this status (and a small JSON error body).
    Status(u16),
    /// A gRPC callee answers with this status code (0..=16, never `OK`) and no message body.
    Grpc(u8),
}

/// The method under which a gRPC call is recorded (its path is `/package.Service/Method`).
pub const GRPC_METHOD: &str = "GRPC";

/// gRPC's status codes by name, in code order (`OK` is code 0 and cannot be injected).
pub const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The longest `delay:` accepted.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

impl Fault {
    /// The faults every callee gets: transport faults and the generic server errors.
    pub const DEFAULTS: [Fault; 6] =
        [Fault::Connect, Fault::Timeout, Fault::Slow, Fault::Status(500), Fault::Status(502), Fault::Status(503)];

    /// The faults every gRPC callee gets: transport faults and the codes of a server or network in trouble.
    pub const GRPC_DEFAULTS: [Fault; 6] =
        [Fault::Connect, Fault::Timeout, Fault::Slow, Fault::Grpc(14), Fault::Grpc(4), Fault::Grpc(13)];

    /// Whether the fault can be injected into a call of this kind: HTTP statuses into HTTP calls, gRPC
    /// codes into gRPC calls, the others into both.
    pub fn applies_to(&self, grpc: bool) -> bool {
        match self {
            Fault::Status(_) => !grpc,
            Fault::Grpc(_) => grpc,
            _ => true,
        }
    }

    /// `status` for every status fault, `delay` for every delay, else the fault's name: the unit a
    /// vulnerability is grouped by.
    pub fn family(&self) -> &'static str {
        match self {
            Fault::Connect => "connect",
            Fault::Timeout => "timeout",
            Fault::Slow => "slow",
            Fault::Delay(_) => "delay",
            Fault::Status(_) => "status",
            Fault::Grpc(_) => "grpc",
        }
    }

    /// How long the callee is held before it answers, for the faults that slow a call down.
    pub fn hold(&self) -> Option<Duration> {
        match self {
            // Longer than any deadline: the answer never comes in time.
            Fault::Slow => Some(Duration::from_secs(24 * 3600)),
            Fault::Delay(delay) => Some(*delay),
            _ => None,
        }
    }
}

/// `250ms`, `2s`, `1.5s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = match text.strip_suffix("ms") {
        Some(number) => (number, 0.001),
        None => (text.strip_suffix('s')?, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value > 0.0).then(|| Duration::from_secs_f64(value * unit))
}

fn format_duration(duration: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) && ms > 0 {
        write!(f, "{}s", ms / 1000)
    } else {
        write!(f, "{ms}ms")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Connect => f.write_str("connect"),
            Fault::Timeout => f.write_str("timeout"),
            Fault::Slow => f.write_str("slow"),
            Fault::Delay(delay) => {
                f.write_str("delay:")?;
                format_duration(*delay, f)
            }
            Fault::Status(code) => write!(f, "status:{code}"),
            Fault::Grpc(code) => write!(f, "grpc:{}", GRPC_CODES[usize::from(*code).min(16)]),
        }
    }
}

impl FromStr for Fault {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| Error::BadFault { name: text.to_string(), why: why.to_string() };
        match text.trim() {
            "connect" => Ok(Fault::Connect),
            "timeout" => Ok(Fault::Timeout),
            "slow" => Ok(Fault::Slow),
            other if other.starts_with("delay:") => {
                let delay = parse_duration(&other["delay:".len()..])
                    .ok_or_else(|| bad("a delay is a positive duration in ms or s, e.g. delay:250ms"))?;
                if delay < Duration::from_millis(1) || delay > MAX_DELAY {
                    return Err(bad("a delay is between 1ms and 3600s"));
                }
                Ok(Fault::Delay(Duration::from_millis(delay.as_millis() as u64)))
            }
            other if other.starts_with("grpc:") => {
                let name = &other["grpc:".len()..];
                let code = GRPC_CODES
                    .iter()
                    .position(|code| code.eq_ignore_ascii_case(name))
                    .or_else(|| name.parse::<usize>().ok().filter(|code| *code < GRPC_CODES.len()))
                    .ok_or_else(|| bad("a gRPC code is a name such as UNAVAILABLE or a number up to 16"))?;
                if code == 0 {
                    return Err(bad("OK is not a fault"));
                }
                Ok(Fault::Grpc(code as u8))
            }
            other => {
                let code = other.strip_prefix("status:").ok_or_else(|| {
                    bad("expected `connect`, `timeout`, `slow`, `delay:D`, `status:NNN` or `grpc:CODE`")
                })?;
                let code: u16 = code.parse().map_err(|_| bad("the status is not a number"))?;
                if !(400..=599).contains(&code) {
                    return Err(bad("only error statuses 400..=599 can be injected"));
                }
                Ok(Fault::Status(code))
            }
        }
    }
}

serde_as_text!(Fault);

/// Which faults apply to calls into which service.
///
/// File format, one service per line, `#` starts a comment:
/// ```text
/// bookings: status:404
/// movies: status:404
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    extra: BTreeMap<String, Vec<Fault>>,
    /// When set, exactly these faults are tried on every call.
    only: Option<Vec<Fault>>,
}

/// The answer an injected status fault gives: the status and a small JSON body naming it.
pub(crate) fn injected_status(code: u16) -> (http::StatusCode, bytes::Bytes) {
    let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": status.canonical_reason().unwrap_or("Error") }).to_string();
    (status, bytes::Bytes::from(body))
}

/// The answer an injected gRPC fault gives: what a gRPC server answers with an error and no message
/// (HTTP 200, the code in `grpc-status`, "trailers only").
pub(crate) fn injected_grpc(code: u8) -> http::Response<bytes::Bytes> {
    let name = GRPC_CODES[usize::from(code).min(16)];
    let mut response = http::Response::new(bytes::Bytes::new());
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", http::HeaderValue::from(u16::from(code)));
    headers.insert(
        "grpc-message",
        http::HeaderValue::from_str(&format!("{name}%20(injected)")).expect("letters are a header value"),
    );
    response
}

impl Catalog {
    /// Parses catalog text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, Error> {
        let mut extra: BTreeMap<String, Vec<Fault>> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: String| Error::BadCatalog { origin: origin.to_string(), line: index + 1, why };
            let (service, faults) =
                line.split_once(':').ok_or_else(|| bad(format!("expected `service: fault ...`, found `{line}`")))?;
            let key = service.trim();
            // `service` or `service/path` (one method of a gRPC service, one path of an HTTP one).
            let service = key.split_once('/').map_or(key, |(service, _)| service);
            if !crate::call::valid_service_name(service) || key.contains(char::is_whitespace) {
                return Err(bad(format!("`{key}` is not a service name (or service/path)")));
            }
            let entry = extra.entry(key.to_string()).or_default();
            for name in faults.split([',', ' ']).filter(|n| !n.is_empty()) {
                let fault: Fault = name.parse().map_err(|error: Error| bad(error.to_string()))?;
                if !entry.contains(&fault) {
                    entry.push(fault);
                }
            }
        }
        Ok(Catalog { extra, only: None })
    }

    /// Reads a catalog file.
    pub fn load(path: &Path) -> Result<Catalog, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { what: format!("read fault catalog {}", path.display()), source })?;
        Catalog::parse(&text, &path.display().to_string())
    }

    /// Restricts exploration to the given faults.
    pub fn only(mut self, faults: Vec<Fault>) -> Catalog {
        self.only = Some(faults);
        self
    }

    /// Adds faults for one service.
    pub fn with(mut self, service: &str, faults: &[Fault]) -> Catalog {
        let entry = self.extra.entry(service.to_string()).or_default();
        for fault in faults {
            if !entry.contains(fault) {
                entry.push(*fault);
            }
        }
        self
    }

    /// The faults to try on an HTTP call into `service`, in a fixed order.
    pub fn faults_for(&self, service: &str) -> Vec<Fault> {
        self.faults_for_call(service, "GET", "")
    }

    /// The faults to try on one call: the defaults of its kind (gRPC when `method` is [`GRPC_METHOD`]), the
    /// catalog's faults for the callee and for the callee and path, each only where it applies.
    pub fn faults_for_call(&self, service: &str, method: &str, path: &str) -> Vec<Fault> {
        let grpc = method == GRPC_METHOD;
        let mut faults: Vec<Fault> = match &self.only {
            Some(only) => only.clone(),
            None => {
                let defaults = if grpc { Fault::GRPC_DEFAULTS } else { Fault::DEFAULTS };
                let extra = [self.extra.get(service), self.extra.get(&format!("{service}{path}"))];
                let mut faults = defaults.to_vec();
                for fault in extra.into_iter().flatten().flatten() {
                    if !faults.contains(fault) {
                        faults.push(*fault);
                    }
                }
                faults
            }
        };
        faults.retain(|fault| fault.applies_to(grpc));
        faults
    }

    /// Renders the catalog in its file format.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# cloture fault catalog: error statuses each service is known to return.\n\
             # Calls into a service get connect, timeout (where the call has a time limit), slow, status:500,\n\
             # status:502 and status:503, plus these; gRPC calls get connect, timeout, slow, grpc:UNAVAILABLE,\n\
             # grpc:DEADLINE_EXCEEDED and grpc:INTERNAL, plus the grpc: codes here.\n",
        );
        for (service, faults) in &self.extra {
            let names: Vec<String> = faults.iter().map(Fault::to_string).collect();
            out.push_str(&format!("{service}: {}\n", names.join(" ")));
        }
        out
    }

    /// Generates a catalog from service sources: every `StatusCode::X` naming a 4xx or 5xx status in a
    /// service's source, and the idioms `not_found(..)` / `NotFound` (404) and `bad_request(..)` /
    /// `BadRequest` (400), is a status that service may return; so is every gRPC code built with tonic's
    /// `Status::code_name(..)`.
    pub fn scan(sources: &[(String, String)]) -> Catalog {
        let mut catalog = Catalog::default();
        for (service, text) in sources {
            let mut statuses: Vec<Fault> = Vec::new();
            for (name, code) in STATUS_NAMES {
                if text.contains(&format!("StatusCode::{name}")) {
                    statuses.push(Fault::Status(*code));
                }
            }
            // Idioms of error-building functions: `not_found(..)`, `AppError::NotFound(..)`, `bad_request(..)`.
            for (idioms, code) in [(["not_found(", "NotFound"], 404), (["bad_request(", "BadRequest"], 400)] {
                let fault = Fault::Status(code);
                if idioms.iter().any(|idiom| text.contains(idiom)) && !statuses.contains(&fault) {
                    statuses.push(fault);
                }
            }
            // tonic's constructors: `Status::not_found(..)` is a gRPC NOT_FOUND that service may answer.
            for (code, name) in GRPC_CODES.iter().enumerate().skip(1) {
                if text.contains(&format!("Status::{}(", name.to_lowercase())) {
                    statuses.push(Fault::Grpc(code as u8));
                }
            }
            statuses.retain(|fault| !Fault::DEFAULTS.contains(fault) && !Fault::GRPC_DEFAULTS.contains(fault));
            statuses.sort();
            catalog = catalog.with(service, &statuses);
        }
        catalog
    }
}

const STATUS_NAMES: &[(&str, u16)] = &[
    ("BAD_REQUEST", 400),
    ("UNAUTHORIZED", 401),
    ("FORBIDDEN", 403),
    ("NOT_FOUND", 404),
    ("METHOD_NOT_ALLOWED", 405),
    ("CONFLICT", 409),
    ("TOO_MANY_REQUESTS", 429),
    ("INTERNAL_SERVER_ERROR", 500),
    ("NOT_IMPLEMENTED", 501),
    ("BAD_GATEWAY", 502),
    ("SERVICE_UNAVAILABLE", 503),
    ("GATEWAY_TIMEOUT", 504),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for name in ["connect", "timeout", "slow", "delay:250ms", "delay:2s", "status:500", "status:404"] {
            assert_eq!(name.parse::<Fault>().unwrap().to_string(), name);
        }
        assert_eq!("delay:1.5s".parse::<Fault>().unwrap(), Fault::Delay(Duration::from_millis(1500)));
    }

    #[test]
    fn delays_must_be_positive_bounded_durations() {
        for bad in ["delay:", "delay:0ms", "delay:-1s", "delay:2h", "delay:7200s", "delay:nans", "delay:0.1ms"] {
            let error = bad.parse::<Fault>().expect_err(bad).to_string();
            assert!(error.contains("delay"), "{bad}: {error}");
        }
    }

    #[test]
    fn unknown_fault_names_are_refused_with_the_name() {
        let error = "tiemout".parse::<Fault>().unwrap_err().to_string();
        assert!(error.contains("tiemout"), "{error}");
        assert!("status:200".parse::<Fault>().is_err());
        assert!("status:abc".parse::<Fault>().is_err());
    }

    #[test]
    fn catalog_adds_known_statuses_to_the_defaults() {
        let catalog = Catalog::parse("# comment\nbookings: status:404\nmovies: status:404 status:500\n", "t").unwrap();
        let bookings = catalog.faults_for("bookings");
        assert_eq!(bookings.len(), 7);
        assert_eq!(bookings[6], Fault::Status(404));
        assert_eq!(catalog.faults_for("movies").len(), 7);
        assert_eq!(catalog.faults_for("showtimes").len(), 6);
    }

    #[test]
    fn malformed_catalog_names_file_and_line() {
        let error = Catalog::parse("bookings: status:404\nmovies status:404\n", "faults.catalog").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("faults.catalog") && text.contains("line 2"), "{text}");
        let error = Catalog::parse("movies: status:4o4\n", "f").unwrap_err();
        assert!(error.to_string().contains("status:4o4"), "{error}");
    }

    #[test]
    fn catalog_render_parses_back() {
        let catalog = Catalog::default().with("bookings", &[Fault::Status(404)]);
        assert_eq!(Catalog::parse(&catalog.render(), "r").unwrap(), catalog);
    }

    #[test]
    fn scan_finds_error_statuses_a_service_returns() {
        let source = "fn f() { respond(StatusCode::NOT_FOUND); respond(StatusCode::OK); }".to_string();
        let catalog = Catalog::scan(&[("bookings".to_string(), source)]);
        assert_eq!(catalog.faults_for("bookings").last(), Some(&Fault::Status(404)));
    }

    #[test]
    fn grpc_codes_are_faults_by_name_or_number() {
        assert_eq!("grpc:UNAVAILABLE".parse::<Fault>().unwrap(), Fault::Grpc(14));
        assert_eq!("grpc:resource_exhausted".parse::<Fault>().unwrap().to_string(), "grpc:RESOURCE_EXHAUSTED");
        assert_eq!("grpc:12".parse::<Fault>().unwrap().to_string(), "grpc:UNIMPLEMENTED");
        for bad in ["grpc:OK", "grpc:0", "grpc:17", "grpc:UNAVAILABLY"] {
            assert!(bad.parse::<Fault>().expect_err(bad).to_string().contains(bad), "{bad}");
        }
    }

    #[test]
    fn grpc_calls_get_grpc_faults_and_http_calls_http_ones() {
        let text = "inventory: grpc:NOT_FOUND status:404\ninventory/shop.Inventory/Reserve: grpc:RESOURCE_EXHAUSTED\n";
        let catalog = Catalog::parse(text, "t").unwrap();
        let reserve = catalog.faults_for_call("inventory", GRPC_METHOD, "/shop.Inventory/Reserve");
        let names: Vec<String> = reserve.iter().map(Fault::to_string).collect();
        assert_eq!(
            names,
            [
                "connect",
                "timeout",
                "slow",
                "grpc:UNAVAILABLE",
                "grpc:DEADLINE_EXCEEDED",
                "grpc:INTERNAL",
                "grpc:NOT_FOUND",
                "grpc:RESOURCE_EXHAUSTED"
            ]
        );
        let lookup = catalog.faults_for_call("inventory", GRPC_METHOD, "/shop.Inventory/Lookup");
        assert!(!lookup.contains(&Fault::Grpc(8)), "the method's faults stay with the method");
        let http = catalog.faults_for_call("inventory", "GET", "/stock");
        assert!(http.contains(&Fault::Status(404)) && !http.iter().any(|fault| fault.family() == "grpc"));
        assert!(Catalog::parse("inventory /x: grpc:INTERNAL\n", "t").is_err());
    }

    #[test]
    fn scan_finds_the_grpc_codes_a_tonic_service_answers() {
        let source = "Err(Status::resource_exhausted(\"sold out\")); Err(Status::internal(\"db\"))".to_string();
        let catalog = Catalog::scan(&[("inventory".to_string(), source)]);
        assert_eq!(catalog.faults_for_call("inventory", GRPC_METHOD, "/a/B").last(), Some(&Fault::Grpc(8)));
    }

    #[test]
    fn only_restricts_the_faults_tried() {
        let catalog = Catalog::default().with("bookings", &[Fault::Status(404)]).only(vec![Fault::Timeout]);
        assert_eq!(catalog.faults_for("bookings"), vec![Fault::Timeout]);
    }
}
