//! The call-graph section's view: the SVG drawing (edges, then service and call-site nodes at the places
//! [`Layout`] gives them) and the table of call sites, ready for `templates/graph.html`.

use std::fmt::Write as _;

use super::layout::{edge_path, Layout, NodeBox, SERVICE_CHARS, SITE_PAD};
use super::view::{plural, truncate, Links, Location, SiteOutcome};
use crate::graph::{Edge, GraphData, Node, SiteStats};
use crate::trace::TEST_SERVICE;

/// The call graph as drawn and tabled.
pub(super) struct GraphView<'a> {
    pub width: f64,
    pub height: f64,
    pub services: usize,
    pub sites: usize,
    /// Drawn first, so nodes are drawn over them.
    pub edges: Vec<EdgeView<'a>>,
    pub nodes: Vec<NodeView<'a>>,
    pub rows: Vec<SiteRow<'a>>,
}

/// An edge: the SVG path and, for a call, its colour and what it requests.
pub(super) struct EdgeView<'a> {
    pub d: String,
    pub call: Option<CallEdge<'a>>,
}

pub(super) struct CallEdge<'a> {
    pub outcome: &'static str,
    pub method: &'a str,
    pub path: &'a str,
}

pub(super) enum NodeView<'a> {
    Service(ServiceNode<'a>),
    Site(SiteNode),
}

pub(super) struct ServiceNode<'a> {
    pub name: &'a str,
    pub test: bool,
    pub b: NodeBox,
    /// Where the (centred) name is written.
    pub text_x: f64,
    pub text_y: f64,
    pub label: String,
}

pub(super) struct SiteNode {
    pub outcome: &'static str,
    pub tooltip: String,
    /// The annotated source line the node links to: (file index, line).
    pub link: Option<(usize, u32)>,
    pub b: NodeBox,
    pub lines: Vec<SiteText>,
}

/// One line of text in a call-site node.
pub(super) struct SiteText {
    pub class: &'static str,
    pub x: f64,
    pub y: f64,
    pub text: String,
}

/// A row of the call-site table.
pub(super) struct SiteRow<'a> {
    pub outcome: &'static str,
    pub service: &'a str,
    pub site: Location,
    /// (callee, method, path) of each call the site makes; the callee `?` when it is not a service.
    pub calls: Vec<(&'a str, &'a str, &'a str)>,
    pub stats: SiteStats,
}

impl<'a> GraphView<'a> {
    /// The view of a call graph, `None` when no call was traced.
    pub fn new(data: &'a GraphData, links: &Links<'_>) -> Option<GraphView<'a>> {
        if data.nodes.is_empty() {
            return None;
        }
        let layout = Layout::compute(data);
        let graph = &layout.graph;
        let edges = data
            .edges
            .iter()
            .filter_map(|edge| {
                let (&from, &to) = (graph.position.get(&edge.from)?, graph.position.get(&edge.to)?);
                let d = edge_path(&layout.boxes[from], &layout.boxes[to]);
                let call = match &edge.edge {
                    Edge::Contains => None,
                    Edge::Calls { method, path } => {
                        let outcome = SiteOutcome::of(data.nodes[from].stats.as_ref()).css();
                        Some(CallEdge { outcome, method, path })
                    }
                };
                Some(EdgeView { d, call })
            })
            .collect();
        let nodes = data.nodes.iter().enumerate().map(|(i, node)| node_view(&layout, i, node, links)).collect();
        Some(GraphView {
            width: layout.width,
            height: layout.height,
            services: data.nodes.iter().filter(|n| matches!(n.node, Node::Service { .. })).count(),
            sites: data.nodes.iter().filter(|n| matches!(n.node, Node::Site { .. })).count(),
            edges,
            nodes,
            rows: site_rows(data, &layout, links),
        })
    }
}

fn node_view<'a>(layout: &Layout<'a>, i: usize, node: &'a crate::graph::NodeData, links: &Links<'_>) -> NodeView<'a> {
    let b = layout.boxes[i];
    match &node.node {
        Node::Service { name } => NodeView::Service(ServiceNode {
            name,
            test: name == TEST_SERVICE,
            b,
            text_x: b.x + b.w / 2.0,
            text_y: b.y + b.h / 2.0 + 4.5,
            label: truncate(name, SERVICE_CHARS),
        }),
        Node::Site { service, site } => {
            let outcome = SiteOutcome::of(node.stats.as_ref());
            let calls = node.stats.as_ref().map_or(0, |s| s.calls);
            let mut tooltip = format!(
                "call site {site} in {service}\n{} made here; {}",
                plural(calls as usize, "call", "calls"),
                outcome.describe(node.stats.as_ref())
            );
            for call in &layout.graph.calls[i] {
                let _ = write!(tooltip, "\ncalls {}: {} {}", call.callee_name, call.method, call.path);
            }
            let lines = layout.labels[i]
                .iter()
                .enumerate()
                .map(|(n, (class, text))| SiteText {
                    class,
                    x: b.x + SITE_PAD,
                    y: b.y + 17.0 + 15.0 * n as f64,
                    text: text.clone(),
                })
                .collect();
            NodeView::Site(SiteNode { outcome: outcome.css(), tooltip, link: links.location(site).target, b, lines })
        }
    }
}

/// The rows of the call-site table, one per site in node order.
fn site_rows<'a>(data: &'a GraphData, layout: &Layout<'a>, links: &Links<'_>) -> Vec<SiteRow<'a>> {
    let graph = &layout.graph;
    // Every call edge of each node, whatever it points to.
    let mut calls: Vec<Vec<(&str, &str, &str)>> = vec![Vec::new(); data.nodes.len()];
    for edge in &data.edges {
        let (Some(&from), Edge::Calls { method, path }) = (graph.position.get(&edge.from), &edge.edge) else {
            continue;
        };
        let callee = graph.position.get(&edge.to).and_then(|&to| graph.names[to]).unwrap_or("?");
        calls[from].push((callee, method, path));
    }
    data.nodes
        .iter()
        .zip(calls)
        .filter_map(|(node, calls)| {
            let Node::Site { service, site } = &node.node else { return None };
            Some(SiteRow {
                outcome: SiteOutcome::of(node.stats.as_ref()).css(),
                service,
                site: links.location(site),
                calls,
                stats: node.stats.clone().unwrap_or_default(),
            })
        })
        .collect()
}
