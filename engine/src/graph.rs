//! The call graph: services and the call sites in them, traced from every execution.
//!
//! Nodes are services and call sites; a service *contains* its call sites and a call site *calls* a
//! service. Each call site keeps what happened when faults were injected at it, so pictures can colour it
//! by outcome. Built with petgraph; exported as DOT and as plain nodes/edges for the report.

use std::collections::HashMap;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use serde::{Deserialize, Serialize};

use crate::call::CallSite;
use crate::trace::CallRecord;

/// A node of the call graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    Service { name: String },
    Site { service: String, site: CallSite },
}

/// An edge of the call graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Edge {
    /// A service holds this call site.
    Contains,
    /// A call site calls a service (method and path as seen first).
    Calls { method: String, path: String },
}

/// Fault outcomes at one call site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStats {
    pub calls: u64,
    pub faults_injected: u64,
    pub failing_executions: u64,
}

/// The traced call graph.
#[derive(Clone, Debug, Default)]
pub struct CallGraph {
    graph: StableDiGraph<Node, Edge>,
    services: HashMap<String, NodeIndex>,
    sites: HashMap<(String, String), NodeIndex>,
    stats: HashMap<NodeIndex, SiteStats>,
}

/// The graph as plain data, for `report.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphData {
    pub nodes: Vec<NodeData>,
    pub edges: Vec<EdgeData>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeData {
    pub id: usize,
    #[serde(flatten)]
    pub node: Node,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stats: Option<SiteStats>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeData {
    pub from: usize,
    pub to: usize,
    #[serde(flatten)]
    pub edge: Edge,
}

impl CallGraph {
    /// Adds the calls of one execution; `failed` says whether that execution failed.
    pub fn add(&mut self, calls: &[CallRecord], failed: bool) {
        for call in calls {
            let from = self.service(&call.from);
            let to = self.service(&call.to);
            let site_key = (call.from.clone(), call.site.to_string());
            let site = match self.sites.get(&site_key) {
                Some(&index) => index,
                None => {
                    let index = self.graph.add_node(Node::Site { service: call.from.clone(), site: call.site.clone() });
                    self.graph.add_edge(from, index, Edge::Contains);
                    self.sites.insert(site_key, index);
                    index
                }
            };
            if !self.graph.edges(site).any(|edge| edge.target() == to) {
                self.graph.add_edge(site, to, Edge::Calls { method: call.method.clone(), path: call.path.clone() });
            }
            let stats = self.stats.entry(site).or_default();
            stats.calls += 1;
            if call.fault.is_some() {
                stats.faults_injected += 1;
                if failed {
                    stats.failing_executions += 1;
                }
            }
        }
    }

    fn service(&mut self, name: &str) -> NodeIndex {
        if let Some(&index) = self.services.get(name) {
            return index;
        }
        let index = self.graph.add_node(Node::Service { name: name.to_string() });
        self.services.insert(name.to_string(), index);
        index
    }

    /// The graph as plain nodes and edges.
    pub fn data(&self) -> GraphData {
        let ids: HashMap<NodeIndex, usize> = self.graph.node_indices().enumerate().map(|(i, n)| (n, i)).collect();
        GraphData {
            nodes: self
                .graph
                .node_indices()
                .map(|n| NodeData { id: ids[&n], node: self.graph[n].clone(), stats: self.stats.get(&n).cloned() })
                .collect(),
            edges: self
                .graph
                .edge_references()
                .map(|e| EdgeData { from: ids[&e.source()], to: ids[&e.target()], edge: e.weight().clone() })
                .collect(),
        }
    }
}

impl GraphData {
    /// Graphviz DOT: services as boxes, call sites as ellipses coloured by what faults there did.
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph cloture {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
        for node in &self.nodes {
            let (label, style) = match &node.node {
                Node::Service { name } => (name.clone(), "shape=box style=bold".to_string()),
                Node::Site { site, .. } => {
                    let colour = match &node.stats {
                        Some(stats) if stats.failing_executions > 0 => "red",
                        Some(stats) if stats.faults_injected > 0 => "darkgreen",
                        _ => "gray",
                    };
                    (site.to_string(), format!("shape=ellipse color={colour}"))
                }
            };
            out.push_str(&format!("  n{} [label=\"{}\" {}];\n", node.id, dot_escape(&label), style));
        }
        for edge in &self.edges {
            let label = match &edge.edge {
                Edge::Contains => String::new(),
                Edge::Calls { method, path } => format!(" [label=\"{}\"]", dot_escape(&format!("{method} {path}"))),
            };
            out.push_str(&format!("  n{} -> n{}{};\n", edge.from, edge.to, label));
        }
        out.push_str("}\n");
        out
    }
}

/// Escapes text for a double-quoted DOT string: backslashes and quotes escaped, control characters (line
/// breaks included) shown as spaces, so no text can end the string or add attributes.
fn dot_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallKey;
    use crate::fault::Fault;
    use crate::trace::{CallOutcome, TimeLimit};

    #[test]
    fn d10_every_text_of_the_dot_output_is_escaped_the_method_included() {
        let hostile = "GET\" URL=\"javascript:alert(1)\" target=\"_top";
        let graph = GraphData {
            nodes: vec![
                NodeData { id: 0, node: Node::Service { name: "a\"b".into() }, stats: None },
                NodeData { id: 1, node: Node::Service { name: "c\nd".into() }, stats: None },
            ],
            edges: vec![EdgeData { from: 0, to: 1, edge: Edge::Calls { method: hostile.into(), path: "/p\\".into() } }],
        };
        let dot = graph.dot();
        assert!(dot.contains(r#"label="GET\" URL=\"javascript:alert(1)\" target=\"_top /p\\""#), "{dot}");
        assert!(dot.contains(r#"label="a\"b""#) && dot.contains(r#"label="c d""#), "{dot}");
        // Outside quoted strings, nothing but the graph's own syntax.
        let (mut unquoted, mut quoted, mut escaped) = (String::new(), false, false);
        for c in dot.chars() {
            match (quoted, escaped, c) {
                (true, false, '\\') => escaped = true,
                (true, true, _) => escaped = false,
                (_, _, '"') => quoted = !quoted,
                (false, _, c) => unquoted.push(c),
                _ => {}
            }
        }
        assert!(!unquoted.contains("URL") && !unquoted.contains("javascript"), "{unquoted}");
    }
    fn call(from: &str, to: &str, line: u32, fault: Option<Fault>) -> CallRecord {
        CallRecord {
            key: CallKey(u64::from(line)),
            parent: CallKey::ROOT,
            from: from.into(),
            to: to.into(),
            method: "GET".into(),
            path: format!("/{to}"),
            site: CallSite { file: "src/x.rs".into(), line, column: 5 },
            fault,
            outcome: CallOutcome::Status(200),
            limit: TimeLimit::None,
        }
    }

    #[test]
    fn graph_links_services_through_call_sites_and_counts_failures() {
        let mut graph = CallGraph::default();
        graph.add(&[call("test", "users", 1, None), call("users", "bookings", 2, None)], false);
        graph.add(&[call("test", "users", 1, None), call("users", "bookings", 2, Some(Fault::Timeout))], true);
        let data = graph.data();
        assert_eq!(data.nodes.iter().filter(|n| matches!(n.node, Node::Service { .. })).count(), 3);
        assert_eq!(data.nodes.iter().filter(|n| matches!(n.node, Node::Site { .. })).count(), 2);
        assert_eq!(data.edges.len(), 4);
        let site = data.nodes.iter().find(|n| n.stats.as_ref().is_some_and(|s| s.failing_executions == 1));
        assert!(site.is_some());
        let dot = data.dot();
        assert!(dot.contains("color=red") && dot.contains("GET /bookings"), "{dot}");
    }
}
