//! cloture's context passes through a hop instrumented with OpenTelemetry: a service that extracts the
//! W3C trace context and baggage from the request it got and injects them into the request it makes
//! (what tracing-opentelemetry with these propagators does) carries cloture's execution, parent call and
//! plan, although it passes none of cloture's own headers on.

use std::collections::HashMap;

use cloture::propagate;
use cloture::CallKey;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

#[test]
fn a_hop_with_the_trace_context_and_baggage_propagators_passes_clotures_context_on() {
    let plan = "00000000000000aa=timeout,00000000000000bb=grpc:UNAVAILABLE";
    let mut sent = HeaderMap::new();
    propagate::inject(&mut sent, 42, CallKey(0x0123_4567_89ab_cdef), Some(plan));
    let received: HashMap<String, String> =
        sent.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string())).collect();

    let propagator = TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]);
    let context = propagator.extract(&received);
    let mut forwarded: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&context, &mut forwarded);
    assert!(forwarded.keys().all(|name| !name.starts_with("x-cloture")), "{forwarded:?}");

    let mut headers = HeaderMap::new();
    for (name, value) in &forwarded {
        headers.insert(HeaderName::try_from(name.as_str()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    let incoming = propagate::extract(&headers).expect("the context came through");
    assert_eq!((incoming.execution, incoming.parent), (42, CallKey(0x0123_4567_89ab_cdef)));
    assert_eq!(incoming.plan.as_deref(), Some(plan));
}

#[test]
fn the_trace_context_propagator_alone_passes_the_execution_and_parent_on() {
    let mut sent = HeaderMap::new();
    propagate::inject(&mut sent, 7, CallKey(0xfeed), None);
    let received: HashMap<String, String> =
        sent.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string())).collect();
    let propagator = TraceContextPropagator::new();
    let mut forwarded: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&propagator.extract(&received), &mut forwarded);
    let mut headers = HeaderMap::new();
    for (name, value) in &forwarded {
        headers.insert(HeaderName::try_from(name.as_str()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    let incoming = propagate::extract(&headers).expect("the context came through");
    assert_eq!((incoming.execution, incoming.parent, incoming.plan), (7, CallKey(0xfeed), None));
}
