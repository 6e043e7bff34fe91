//! The context headers of a call, written by every client and read by every server: cloture's own
//! (`x-cloture-execution`, `x-cloture-parent`, `x-cloture-plan`) and the same context in the W3C formats
//! OpenTelemetry propagates — an entry `cloture=<execution>-<parent>` in `tracestate` (with a
//! `traceparent` when the request has none, since a `tracestate` alone is dropped) and `cloture.plan` in
//! `baggage` — so that a service instrumented with OpenTelemetry passes cloture's context on without code
//! changes. A server reads cloture's headers first and the W3C ones when they are absent.
//!
//! Pure: header maps in, header maps out.

use http::{HeaderMap, HeaderValue};

use crate::call::CallKey;
use crate::trace::{EXECUTION_HEADER, PARENT_HEADER, PLAN_HEADER};

/// The W3C trace-context headers.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
/// The W3C baggage header.
pub const BAGGAGE: &str = "baggage";
/// cloture's vendor key in `tracestate`.
pub const TRACESTATE_KEY: &str = "cloture";
/// cloture's key for the plan in `baggage`.
pub const BAGGAGE_PLAN_KEY: &str = "cloture.plan";
/// The longest `baggage` header written (W3C's limit).
const MAX_BAGGAGE: usize = 8192;

/// The context a request arrived with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub execution: u64,
    /// The key of the call that delivered the request.
    pub parent: CallKey,
    /// The execution's plan (`key=fault,...`), for services in other processes.
    pub plan: Option<String>,
}

/// Writes the context of call `key` of `execution` into `headers`.
pub fn inject(headers: &mut HeaderMap, execution: u64, key: CallKey, plan: Option<&str>) {
    headers.insert(EXECUTION_HEADER, HeaderValue::from(execution));
    headers.insert(PARENT_HEADER, HeaderValue::from_str(&key.to_string()).expect("hex digits are a header value"));
    if let Some(plan) = plan.and_then(|plan| HeaderValue::from_str(plan).ok()) {
        headers.insert(PLAN_HEADER, plan);
    }
    if !headers.contains_key(TRACEPARENT) {
        // A trace of this execution, the call its span: only so that `tracestate` is kept; not sampled.
        let parent = format!("00-{:016x}{execution:016x}-{key}-00", u64::from_be_bytes(*b"cloture\0"));
        headers.insert(TRACEPARENT, HeaderValue::from_str(&parent).expect("hex digits are a header value"));
    }
    // Our entry first, as W3C asks of the vendor that changed it; the others kept in their order.
    let ours = format!("{TRACESTATE_KEY}={execution:016x}-{key}");
    let state = if headers.contains_key(TRACESTATE) { merged(headers, TRACESTATE, '=', &ours, 32 * 257) } else { ours };
    headers.insert(TRACESTATE, HeaderValue::from_str(&state).expect("tracestate members are header values"));
    if let Some(plan) = plan {
        let entry = format!("{BAGGAGE_PLAN_KEY}={}", plan.replace(',', "%2C").replace('=', "%3D"));
        let baggage = merged(headers, BAGGAGE, '=', &entry, MAX_BAGGAGE);
        if let Ok(value) = HeaderValue::from_str(&baggage) {
            headers.insert(BAGGAGE, value);
        }
    }
}

/// The list header `name` with `entry` first and any earlier entry of the same key removed, bounded by
/// `limit` bytes (entries at the end are dropped).
fn merged(headers: &HeaderMap, name: &str, separator: char, entry: &str, limit: usize) -> String {
    let key = entry.split(separator).next().unwrap_or(entry);
    let mut list = entry.to_string();
    for value in headers.get_all(name).iter().filter_map(|value| value.to_str().ok()) {
        for member in value.split(',').map(str::trim).filter(|member| !member.is_empty()) {
            if member.split(separator).next().map(str::trim) == Some(key) {
                continue;
            }
            if list.len() + 1 + member.len() > limit {
                return list;
            }
            list.push(',');
            list.push_str(member);
        }
    }
    list
}

/// The context of an incoming request: cloture's headers, else the W3C ones; `None` without one.
pub fn extract(headers: &HeaderMap) -> Option<Incoming> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let plan = text(PLAN_HEADER).map(str::to_string).or_else(|| baggage_plan(headers));
    if let (Some(execution), Some(parent)) = (text(EXECUTION_HEADER), text(PARENT_HEADER)) {
        let execution = execution.parse().ok()?;
        return Some(Incoming { execution, parent: parent.parse().ok()?, plan });
    }
    let (execution, parent) = headers
        .get_all(TRACESTATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|member| member.trim().strip_prefix(TRACESTATE_KEY)?.strip_prefix('='))?
        .split_once('-')?;
    let execution = u64::from_str_radix(execution, 16).ok()?;
    Some(Incoming { execution, parent: parent.parse().ok()?, plan })
}

/// The plan carried in `baggage`, if any.
fn baggage_plan(headers: &HeaderMap) -> Option<String> {
    headers.get_all(BAGGAGE).iter().filter_map(|value| value.to_str().ok()).flat_map(|value| value.split(',')).find_map(
        |member| {
            let (key, value) = member.split_once('=')?;
            // A member may carry properties after `;`.
            (key.trim() == BAGGAGE_PLAN_KEY).then(|| percent_decoded(value.split(';').next().unwrap_or("").trim()))
        },
    )
}

/// `%XX` escapes decoded (a propagator may escape more than cloture does); invalid escapes kept as they are.
pub(crate) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| text.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: CallKey = CallKey(0x0123_4567_89ab_cdef);

    #[test]
    fn clotures_headers_come_back_as_the_context_they_carry() {
        let mut headers = HeaderMap::new();
        inject(&mut headers, 42, KEY, Some("00000000000000aa=timeout,00000000000000bb=status:503"));
        let incoming = extract(&headers).expect("a context");
        assert_eq!((incoming.execution, incoming.parent), (42, KEY));
        assert_eq!(incoming.plan.as_deref(), Some("00000000000000aa=timeout,00000000000000bb=status:503"));
    }

    #[test]
    fn the_w3c_headers_alone_carry_the_context() {
        let mut headers = HeaderMap::new();
        inject(&mut headers, 42, KEY, Some("00000000000000aa=timeout,00000000000000bb=status:503"));
        for name in [EXECUTION_HEADER, PARENT_HEADER, PLAN_HEADER] {
            headers.remove(name);
        }
        let incoming = extract(&headers).expect("a context from tracestate");
        assert_eq!((incoming.execution, incoming.parent), (42, KEY));
        assert_eq!(incoming.plan.as_deref(), Some("00000000000000aa=timeout,00000000000000bb=status:503"));
        let parent = headers[TRACEPARENT].to_str().unwrap();
        assert!(parent.starts_with("00-") && parent.ends_with(&format!("-{KEY}-00")), "{parent}");
    }

    #[test]
    fn other_vendors_entries_and_an_existing_traceparent_are_kept() {
        let mut headers = HeaderMap::new();
        let theirs = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert(TRACEPARENT, HeaderValue::from_static(theirs));
        headers.insert(TRACESTATE, HeaderValue::from_static("rojo=00f067aa0ba902b7,cloture=1-0000000000000001"));
        headers.insert(BAGGAGE, HeaderValue::from_static("user=alice"));
        inject(&mut headers, 7, KEY, Some("00000000000000aa=connect"));
        assert_eq!(headers[TRACEPARENT], theirs);
        assert_eq!(headers[TRACESTATE], format!("cloture=0000000000000007-{KEY},rojo=00f067aa0ba902b7").as_str());
        assert_eq!(headers[BAGGAGE], "cloture.plan=00000000000000aa%3Dconnect,user=alice");
    }

    #[test]
    fn a_request_without_context_has_none() {
        let mut headers = HeaderMap::new();
        assert_eq!(extract(&headers), None);
        headers.insert(TRACESTATE, HeaderValue::from_static("rojo=00f067aa0ba902b7,cloture=zz-nothex"));
        assert_eq!(extract(&headers), None);
    }
}
