//! The layered layout of the call graph drawn on the page: services in columns by call depth from the test
//! (column `2 * depth`), each call site in the column right after its service's, every column centred
//! vertically; and the text lines of each call-site box, which set its width.
//!
//! Pure geometry over [`GraphData`]. The adjacency of the graph is built once ([`Adjacency`]), so the layout
//! takes time linear in the graph's size, plus sorting each column.

use std::collections::{HashMap, VecDeque};

use super::view::{plural, truncate, SiteOutcome};
use crate::call::CallSite;
use crate::graph::{Edge, GraphData, Node, SiteStats};
use crate::trace::TEST_SERVICE;

/// The most characters of a label in a service node and in a line of a call-site node.
pub(super) const SERVICE_CHARS: usize = 24;
const SITE_CHARS: usize = 34;
/// Width of one character of the monospace font used in the graph (0.6 em), per pixel of font size.
const CHAR_EM: f64 = 0.61;
const SERVICE_FONT: f64 = 13.0;
const SITE_FONT: f64 = 11.5;
pub(super) const SITE_PAD: f64 = 10.0;
const SERVICE_HEIGHT: f64 = 36.0;
const SITE_HEIGHT: f64 = 56.0;
const COLUMN_GAP: f64 = 64.0;
const ROW_GAP: f64 = 18.0;
const MARGIN: f64 = 16.0;

/// Where a node is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct NodeBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub column: usize,
}

/// One call a site makes: to the service at position `callee`.
#[derive(Clone, Copy, Debug)]
pub(super) struct SiteCall<'g> {
    pub method: &'g str,
    pub path: &'g str,
    pub callee: usize,
    pub callee_name: &'g str,
}

/// The graph's structure by position in `GraphData::nodes`, built once from the edges.
#[derive(Debug)]
pub(super) struct Adjacency<'g> {
    /// Node id → position.
    pub position: HashMap<usize, usize>,
    /// Name of each service (`None` for sites).
    pub names: Vec<Option<&'g str>>,
    /// Site → its service.
    owner: Vec<Option<usize>>,
    /// Site → the services it calls, in edge order.
    pub calls: Vec<Vec<SiteCall<'g>>>,
    /// Service → the sites that call it, in edge order.
    callers: Vec<Vec<usize>>,
    /// Service → its sites, in node order.
    sites: Vec<Vec<usize>>,
}

impl<'g> Adjacency<'g> {
    pub fn new(data: &'g GraphData) -> Adjacency<'g> {
        let count = data.nodes.len();
        let position: HashMap<usize, usize> = data.nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        let names: Vec<Option<&str>> = data
            .nodes
            .iter()
            .map(|n| match &n.node {
                Node::Service { name } => Some(name.as_str()),
                Node::Site { .. } => None,
            })
            .collect();
        let mut owner = vec![None; count];
        let mut calls = vec![Vec::new(); count];
        let mut callers = vec![Vec::new(); count];
        for edge in &data.edges {
            let (Some(&from), Some(&to)) = (position.get(&edge.from), position.get(&edge.to)) else { continue };
            match (&edge.edge, names[from], names[to]) {
                (Edge::Contains, Some(_), None) => {
                    owner[to].get_or_insert(from);
                }
                (Edge::Calls { method, path }, None, Some(callee_name)) => {
                    calls[from].push(SiteCall { method, path, callee: to, callee_name });
                    callers[to].push(from);
                }
                _ => {}
            }
        }
        // A site no edge puts in a service belongs to the service of its name (the last of that name).
        let by_name: HashMap<&str, usize> = names.iter().enumerate().filter_map(|(i, n)| n.map(|n| (n, i))).collect();
        let mut sites = vec![Vec::new(); count];
        for (i, node) in data.nodes.iter().enumerate() {
            if let Node::Site { service, .. } = &node.node {
                if owner[i].is_none() {
                    owner[i] = by_name.get(service.as_str()).copied();
                }
                if let Some(s) = owner[i] {
                    sites[s].push(i);
                }
            }
        }
        Adjacency { position, names, owner, calls, callers, sites }
    }

    fn is_service(&self, i: usize) -> bool {
        self.names[i].is_some()
    }

    /// Call depth of every service: breadth first from the test (or from the services nobody calls), then
    /// from each service not yet reached, preferring one that no site of a service calls.
    fn depths(&self) -> Vec<Option<usize>> {
        let services: Vec<usize> = (0..self.names.len()).filter(|&i| self.is_service(i)).collect();
        // The last service of that name, as a name → service map would have it.
        let test = services.iter().copied().rfind(|&s| self.names[s] == Some(TEST_SERVICE));
        let mut roots: Vec<usize> = match test {
            Some(test) => vec![test],
            None => services.iter().copied().filter(|&s| self.callers[s].is_empty()).collect(),
        };
        // An unreached service whose callers all have an owner cannot be called by a reached service (that
        // would have reached it), so "no caller in a reached service" is "no caller in any service".
        let uncalled: Vec<usize> = services
            .iter()
            .copied()
            .filter(|&s| self.callers[s].iter().all(|&site| self.owner[site].is_none()))
            .collect();
        let (mut next_uncalled, mut next_any) = (0, 0);
        let mut depth = vec![None; self.names.len()];
        loop {
            let mut queue: VecDeque<usize> = roots.iter().copied().collect();
            for &root in &roots {
                depth[root] = Some(0);
            }
            while let Some(service) = queue.pop_front() {
                let d = depth[service].expect("queued services have a depth");
                for &site in &self.sites[service] {
                    for call in &self.calls[site] {
                        if depth[call.callee].is_none() {
                            depth[call.callee] = Some(d + 1);
                            queue.push_back(call.callee);
                        }
                    }
                }
            }
            let unreached = |list: &[usize], next: &mut usize| {
                while *next < list.len() && depth[list[*next]].is_some() {
                    *next += 1;
                }
                list.get(*next).copied()
            };
            match unreached(&uncalled, &mut next_uncalled).or_else(|| unreached(&services, &mut next_any)) {
                Some(root) => roots = vec![root],
                None => break,
            }
        }
        depth
    }
}

/// The layered layout of a call graph.
#[derive(Debug)]
pub(super) struct Layout<'g> {
    pub width: f64,
    pub height: f64,
    /// Per node, by position in `GraphData::nodes`.
    pub boxes: Vec<NodeBox>,
    /// The text lines of each call-site node (empty for services).
    pub labels: Vec<Vec<(&'static str, String)>>,
    pub graph: Adjacency<'g>,
}

impl<'g> Layout<'g> {
    pub fn compute(data: &'g GraphData) -> Layout<'g> {
        let graph = Adjacency::new(data);
        let columns = columns(&graph);
        let labels: Vec<Vec<(&'static str, String)>> = data
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| match &node.node {
                Node::Service { .. } => Vec::new(),
                Node::Site { site, .. } => site_lines(site, &graph.calls[i], node.stats.as_ref()),
            })
            .collect();
        let sizes: Vec<(f64, f64)> = data
            .nodes
            .iter()
            .zip(&labels)
            .map(|(node, lines)| match &node.node {
                Node::Service { name } => {
                    let chars = name.chars().count().min(SERVICE_CHARS) as f64;
                    ((chars * CHAR_EM * SERVICE_FONT + 28.0).max(72.0), SERVICE_HEIGHT)
                }
                Node::Site { .. } => {
                    let chars = lines.iter().map(|(_, text)| text.chars().count()).max().unwrap_or(0) as f64;
                    (chars * CHAR_EM * SITE_FONT + 2.0 * SITE_PAD, SITE_HEIGHT)
                }
            })
            .collect();
        let (boxes, width, tallest) = place(&columns, &sizes);
        // Room below for edges that go back to an earlier column.
        let back_edges = data.edges.iter().any(|e| {
            matches!(e.edge, Edge::Calls { .. })
                && match (graph.position.get(&e.from), graph.position.get(&e.to)) {
                    (Some(&a), Some(&b)) => boxes[b].column <= boxes[a].column,
                    _ => false,
                }
        });
        let height = tallest + 2.0 * MARGIN + if back_edges { 48.0 } else { 0.0 };
        Layout { width, height, boxes, labels, graph }
    }
}

/// The nodes of each column, top to bottom: sites grouped by their service's row, services next to the
/// first site (in an earlier column) that calls them.
fn columns(graph: &Adjacency<'_>) -> Vec<Vec<usize>> {
    let depth = graph.depths();
    let count = graph.names.len();
    let column_of = |i: usize| -> usize {
        if graph.is_service(i) {
            2 * depth[i].unwrap_or(0)
        } else {
            graph.owner[i].map_or(1, |s| 2 * depth[s].unwrap_or(0) + 1)
        }
    };
    let mut columns: Vec<Vec<usize>> = Vec::new();
    for i in 0..count {
        let c = column_of(i);
        if columns.len() <= c {
            columns.resize(c + 1, Vec::new());
        }
        columns[c].push(i);
    }
    let columns_count = columns.len();
    // (column, row) of the nodes of the columns sorted so far.
    let mut position: Vec<Option<(usize, usize)>> = vec![None; count];
    for (c, members) in columns.iter_mut().enumerate() {
        if c % 2 == 1 {
            members.sort_by_cached_key(|&i| (graph.owner[i].and_then(|s| position[s]).map_or(usize::MAX, |p| p.1), i));
        } else {
            members.sort_by_cached_key(|&i| {
                let first_caller = graph.callers[i]
                    .iter()
                    .filter_map(|&site| position[site])
                    .filter(|p| p.0 < c)
                    .map(|p| (columns_count - p.0, p.1))
                    .min()
                    .unwrap_or((usize::MAX, usize::MAX));
                (first_caller, i)
            });
        }
        for (row, &i) in members.iter().enumerate() {
            position[i] = Some((c, row));
        }
    }
    columns
}

/// Boxes for nodes of the given sizes in the given columns, left to right, each column centred vertically;
/// with the total width and the height of the tallest column.
fn place(columns: &[Vec<usize>], sizes: &[(f64, f64)]) -> (Vec<NodeBox>, f64, f64) {
    let heights: Vec<f64> = columns
        .iter()
        .map(|column| column.iter().map(|&i| sizes[i].1).sum::<f64>() + ROW_GAP * column.len().saturating_sub(1) as f64)
        .collect();
    let tallest = heights.iter().copied().fold(0.0, f64::max);
    let mut boxes = vec![NodeBox { x: 0.0, y: 0.0, w: 0.0, h: 0.0, column: 0 }; sizes.len()];
    let mut x = MARGIN;
    for (c, column) in columns.iter().enumerate() {
        let width = column.iter().map(|&i| sizes[i].0).fold(0.0, f64::max);
        let mut y = MARGIN + (tallest - heights[c]) / 2.0;
        for &i in column {
            let (w, h) = sizes[i];
            boxes[i] = NodeBox { x: x + (width - w) / 2.0, y, w, h, column: c };
            y += h + ROW_GAP;
        }
        if !column.is_empty() {
            x += width + COLUMN_GAP;
        }
    }
    let width = (x - COLUMN_GAP + MARGIN).max(2.0 * MARGIN);
    (boxes, width, tallest)
}

/// The text lines of a call-site node, each with its CSS class: where, what it calls, what faults there did.
pub(super) fn site_lines(
    site: &CallSite,
    calls: &[SiteCall<'_>],
    stats: Option<&SiteStats>,
) -> Vec<(&'static str, String)> {
    let outcome = SiteOutcome::of(stats);
    let stats = stats.cloned().unwrap_or_default();
    let (short, target) = match site.file.split_once(" → ").filter(|_| site.is_named()) {
        // Seen on the wire (`users → bookings GET /bookings/{user}`): its route, then its callee.
        Some((_, callee_and_route)) => {
            let (callee, route) = callee_and_route.split_once(' ').unwrap_or((callee_and_route, ""));
            (route.to_string(), format!("→ {callee}"))
        }
        None => {
            let name = site.file.rsplit(['/', '\\']).next().unwrap_or(&site.file);
            let target = match calls {
                [] => "no calls".to_string(),
                [call] => format!("{} {}", call.method, call.path),
                [call, rest @ ..] => format!("{} {} +{}", call.method, call.path, rest.len()),
            };
            (format!("{name}:{}:{}", site.line, site.column), target)
        }
    };
    let faults = plural(stats.faults_injected as usize, "fault", "faults");
    let result = match outcome {
        SiteOutcome::Failing => format!("{faults} · {} failing", stats.failing_executions),
        SiteOutcome::Handled => format!("{faults} · all handled"),
        SiteOutcome::Untouched => "never faulted".to_string(),
    };
    vec![
        ("l1", truncate(&short, SITE_CHARS)),
        ("l2", truncate(&target, SITE_CHARS)),
        ("l3", truncate(&result, SITE_CHARS)),
    ]
}

/// The SVG path of an edge from box `a` to box `b`: a curve from `a`'s right side to `b`'s left side, or
/// a loop below both when `b` is not to the right of `a`.
pub(super) fn edge_path(a: &NodeBox, b: &NodeBox) -> String {
    if b.column > a.column {
        let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
        let (x2, y2) = (b.x - 1.5, b.y + b.h / 2.0);
        let bend = ((x2 - x1) / 2.0).max(12.0);
        format!("M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}", x1 + bend, x2 - bend)
    } else {
        let (x1, y1) = (a.x + a.w / 2.0, a.y + a.h);
        let (x2, y2) = (b.x + b.w / 2.0, b.y + b.h + 1.5);
        let low = y1.max(y2) + 40.0;
        format!("M{x1:.1},{y1:.1} C{x1:.1},{low:.1} {x2:.1},{low:.1} {x2:.1},{y2:.1}")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::graph::{EdgeData, NodeData};

    pub const SITE: &str = "cinema/src/users/recitation.rs:41:10";

    /// test → users → bookings and movies: a test site, two users sites (one with `failing` failing
    /// executions, one whose faults were all handled).
    pub fn graph(failing: u64) -> GraphData {
        let site = |id, service: &str, site: &str, faults, failing| NodeData {
            id,
            node: Node::Site { service: service.into(), site: site.parse().unwrap() },
            stats: Some(SiteStats { calls: 3, faults_injected: faults, failing_executions: failing }),
        };
        let service = |id, name: &str| NodeData { id, node: Node::Service { name: name.into() }, stats: None };
        let calls =
            |from, to, path: &str| EdgeData { from, to, edge: Edge::Calls { method: "GET".into(), path: path.into() } };
        let contains = |from, to| EdgeData { from, to, edge: Edge::Contains };
        GraphData {
            nodes: vec![
                service(0, "test"),
                site(1, "test", "tests/cinema.rs:10:5", 0, 0),
                service(2, "users"),
                site(3, "users", SITE, 2, failing),
                service(4, "bookings"),
                site(5, "users", "cinema/src/users/mod.rs:9:9", 1, 0),
                service(6, "movies"),
            ],
            edges: vec![
                contains(0, 1),
                calls(1, 2, "/users/chris/bookings"),
                contains(2, 3),
                calls(3, 4, "/bookings/chris"),
                contains(2, 5),
                calls(5, 6, "/movies"),
            ],
        }
    }

    /// Every box inside the drawing, no two overlapping.
    fn assert_placed_apart(layout: &Layout<'_>) {
        for (i, p) in layout.boxes.iter().enumerate() {
            assert!(p.x >= 0.0 && p.y >= 0.0 && p.x + p.w <= layout.width && p.y + p.h <= layout.height);
            for q in &layout.boxes[i + 1..] {
                let apart = p.x + p.w <= q.x || q.x + q.w <= p.x || p.y + p.h <= q.y || q.y + q.h <= p.y;
                assert!(apart, "{p:?} overlaps {q:?}");
            }
        }
    }

    #[test]
    fn layout_puts_services_in_columns_by_depth_without_overlaps() {
        let data = graph(1);
        let layout = Layout::compute(&data);
        let b = |i: usize| layout.boxes[i];
        assert_eq!([0, 1, 2, 3, 4, 5, 6].map(|i| b(i).column), [0, 1, 2, 3, 4, 3, 4]);
        assert!(b(0).x + b(0).w < b(1).x && b(1).x + b(1).w < b(2).x && b(2).x + b(2).w < b(3).x);
        assert_placed_apart(&layout);
        assert!(b(3).y < b(5).y, "sites of one service keep their order");
        assert!(b(4).y < b(6).y, "callees sit next to their callers");
    }

    #[test]
    fn layout_survives_cycles_and_a_missing_test_node() {
        let mut data = graph(0);
        data.nodes.remove(0);
        data.edges.retain(|e| e.from != 0);
        // bookings' site calls users back.
        data.nodes.push(NodeData {
            id: 9,
            node: Node::Site { service: "bookings".into(), site: "b.rs:1:1".parse().unwrap() },
            stats: None,
        });
        data.edges.push(EdgeData { from: 4, to: 9, edge: Edge::Contains });
        data.edges.push(EdgeData { from: 9, to: 2, edge: Edge::Calls { method: "GET".into(), path: "/".into() } });
        let layout = Layout::compute(&data);
        assert_eq!(layout.boxes.len(), data.nodes.len());
        assert_placed_apart(&layout);
        // Nobody outside the cycle calls users or bookings: the layout starts from the first service.
        let users = layout.boxes[1];
        assert_eq!(users.column, 0);
        assert!(layout.height > users.h + 48.0, "room below for the edge back to users");
    }

    #[test]
    fn services_nobody_calls_start_their_own_columns() {
        let mut data = graph(0);
        data.nodes.push(NodeData { id: 7, node: Node::Service { name: "reports".into() }, stats: None });
        data.nodes.push(NodeData {
            id: 8,
            node: Node::Site { service: "reports".into(), site: "r.rs:3:1".parse().unwrap() },
            stats: None,
        });
        data.edges.push(EdgeData { from: 7, to: 8, edge: Edge::Contains });
        data.edges.push(EdgeData { from: 8, to: 6, edge: Edge::Calls { method: "GET".into(), path: "/m".into() } });
        // A site no edge puts in a service goes to the service it names.
        data.nodes.push(NodeData {
            id: 10,
            node: Node::Site { service: "bookings".into(), site: "b.rs:2:1".parse().unwrap() },
            stats: None,
        });
        let layout = Layout::compute(&data);
        assert_placed_apart(&layout);
        assert_eq!(layout.boxes[7].column, 0, "reports is reached from nowhere: depth 0");
        assert_eq!(layout.boxes[8].column, 1);
        assert_eq!(layout.boxes[6].column, 4, "movies keeps the depth the test gives it");
        assert_eq!(layout.boxes[9].column, 5, "the unattached site sits right of bookings");
    }

    #[test]
    fn site_lines_say_where_what_and_how_faults_went() {
        let data = graph(2);
        let layout = Layout::compute(&data);
        let lines: Vec<&str> = layout.labels[3].iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(lines, ["recitation.rs:41:10", "GET /bookings/chris", "2 faults · 2 failing"]);
        assert!(layout.labels[0].is_empty(), "services have no lines");
        let long = "src/a_file_whose_name_is_longer_than_a_node_is_wide.rs:1:1";
        let lines = site_lines(&long.parse().unwrap(), &[], None);
        assert_eq!(lines[0].1.chars().count(), SITE_CHARS);
        assert_eq!(lines[1].1, "no calls");
        assert_eq!(lines[2].1, "never faulted");
        let named = CallSite::named("users", "bookings", "GET", "/bookings/{user}");
        let lines = site_lines(&named, &[], None);
        assert_eq!((lines[0].1.as_str(), lines[1].1.as_str()), ("GET /bookings/{user}", "→ bookings"));
    }
}
