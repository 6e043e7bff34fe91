//! cloture: coverage-guided fault exploration for HTTP microservices.
//!
//! A functional test that passes against a set of services is re-run with faults injected at the calls
//! between them; every failure is classified, minimised and replayable. This file is the crate map.
//!
//! ```no_run
//! # async fn example(users: &str) -> Result<(), cloture::Error> {
//! let client = cloture::Client::new();
//! let url = format!("{users}/users/chris_rivers/bookings");
//! let config = cloture::Config { report_dir: Some("target/cloture/bookings".into()), ..cloture::Config::default() };
//! let report = cloture::explore(&config, || {
//!     let (client, url) = (client.clone(), url.clone());
//!     async move {
//!         let response = client.get(url).send().await.map_err(|e| e.to_string())?;
//!         match response.status().as_u16() {
//!             200 => Ok(()),
//!             503 if cloture::fault_injected() => Ok(()),
//!             other => Err(format!("status {other}")),
//!         }
//!     }
//! })
//! .await?;
//! assert_eq!(report.summary.failed, 0, "{}", report.terminal_summary());
//! # Ok(())
//! # }
//! ```

/// Serialises a type through its `Display` and parses it back through its `FromStr`: the model stays typed
/// and the wire text is made and read in one place.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Atomic file writes.
mod atomic;
/// Call identity: call sites and stable call keys.
pub mod call;
/// The one cancellation handle of an exploration: stop, abort, and why.
pub mod cancel;
/// The command line of exploration programs.
pub mod cli;
/// HTTP client with fault injection: what services use for outbound calls.
pub mod client;
/// Execution contexts and the live record of one execution.
pub mod context;
/// The coordinator: decisions over HTTP for services in other processes.
pub mod coordinator;
/// Per-execution coverage and coverage guidance.
pub mod coverage;
/// The explorer: runs executions, classifies them, builds the report.
pub mod explore;
/// External systems: services in their own processes, tests that are commands.
pub mod external;
/// Fault names and the per-service fault catalog.
pub mod fault;
/// The files of an exploration: report.json, call_graph.dot, report.html.
pub mod files;
/// The call graph of services and call sites.
pub mod graph;
/// The HTML report: one self-contained page to read in a browser.
pub mod html;
/// Outbound calls inside an execution: registration, fault decision, record (shared by every client).
mod inject;
/// Merging the reports of a partitioned exploration into one.
pub mod merge;
/// The accept loop of cloture's own endpoints (coordinator, proxies) and its bounds.
pub mod net;
/// Oracle functions for functional tests.
pub mod oracle;
/// Catching panics with their location, in handlers and tests.
pub mod panic;
/// Planning: candidates, dynamic reduction, domination and search order.
pub mod plan;
/// The context headers: cloture's own and its entries in W3C `tracestate` and `baggage`.
pub mod propagate;
/// Proxy mode for services cloture cannot instrument.
pub mod proxy;
/// Which service listens where: names for call targets.
pub mod registry;
/// The report: schema, vulnerabilities, terminal summary.
pub mod report;
/// reqwest: a `reqwest_middleware::Middleware` (feature `reqwest`).
#[cfg(feature = "reqwest")]
pub mod reqwest;
/// Routes of request paths (`/bookings/{user}`): how calls seen only on the wire are named.
pub mod route;
/// Server loop with context propagation and panic capture.
pub mod server;
/// SIGINT, SIGTERM and SIGHUP turned into stopping the exploration.
pub mod signals;
/// Call sites in the caller's own code, for clients that cannot take `#[track_caller]`.
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod site;
/// Quoting for command lines printed to be pasted.
pub mod text;
/// Tower layers: the server layer and a client layer for hyper-util clients and tonic channels.
#[cfg(feature = "tower")]
pub mod tower;
/// What an execution observed, as data: calls, typed outcomes, crashes.
pub mod trace;

mod error;

pub use call::{CallKey, CallSite};
pub use cancel::Cancel;
pub use client::Client;
pub use error::Error;
pub use explore::{explore, Config, Verdict};
pub use fault::{Catalog, Fault};
pub use oracle::{fault_injected, fault_injected_on, is_reference_answer, reference_answer};
pub use registry::register_service;
pub use report::Report;
pub use server::{serve, ServerLayer, Unhandled};
