//! The engine's modules form layers, and imports point one way: down. A module may use modules of lower
//! layers and, within its own layer, modules that do not use it back (no circle of imports). The table
//! below is the rule; ARCHITECTURE.md explains it. The test reads every `crate::` path in each top-level
//! module's non-test code (its submodules included) and in the paths `lib.rs` re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layer of each top-level module, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &["error", "call", "fault", "trace", "plan", "graph", "report", "text", "atomic", "propagate", "route"]),
    ("output", &["html", "merge", "files"]),
    (
        "runtime",
        &[
            "cancel",
            "signals",
            "registry",
            "net",
            "panic",
            "context",
            "inject",
            "site",
            "client",
            "server",
            "tower",
            "reqwest",
            "coordinator",
            "proxy",
            "oracle",
        ],
    ),
    ("drivers", &["explore", "coverage", "external"]),
    ("command line", &["cli"]),
];

fn source_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// The code of a module without its unit tests (`#[cfg(test)]` and everything after it) and without
/// comment lines (a doc link is not an import).
fn without_tests(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every Rust file of top-level module `name`: `name.rs`, or everything under `name/`.
fn module_code(name: &str) -> String {
    let file = source_dir().join(format!("{name}.rs"));
    if file.exists() {
        return without_tests(&std::fs::read_to_string(file).expect("module readable"));
    }
    let mut code = String::new();
    let mut pending = vec![source_dir().join(name)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("module folder readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                code.push_str(&without_tests(&std::fs::read_to_string(path).expect("file readable")));
            }
        }
    }
    code
}

/// The first path segments after `crate::`, including those inside `use crate::{a::X, b}` groups.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').expect("use groups close");
            for item in group[..end].split(',') {
                names.extend(first_segment(item.trim()));
            }
        } else {
            names.extend(first_segment(rest));
        }
    }
    names
}

fn first_segment(text: &str) -> Option<String> {
    let name: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// Items `lib.rs` re-exports at the crate root (`pub use module::{Item, ...}`), by item name.
fn reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(source_dir().join("lib.rs")).expect("lib.rs readable");
    let mut items = BTreeMap::new();
    for line in lib.lines().filter_map(|line| line.strip_prefix("pub use ")) {
        let (module, rest) = line.split_once("::").expect("pub use module::item");
        for item in rest.trim_matches(|c| "{};".contains(c)).split(',') {
            items.insert(item.trim().to_string(), module.to_string());
        }
    }
    items
}

/// Which top-level module uses which.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<&str> = LAYERS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
    let reexported = reexports();
    let mut graph = BTreeMap::new();
    for &module in &modules {
        let mut used = BTreeSet::new();
        for name in crate_paths(&module_code(module)) {
            let target = if modules.contains(name.as_str()) { Some(name) } else { reexported.get(&name).cloned() };
            used.extend(target.filter(|target| target != module));
        }
        graph.insert(module.to_string(), used);
    }
    graph
}

fn layer_of(module: &str) -> usize {
    LAYERS.iter().position(|(_, names)| names.contains(&module)).expect("every module has a layer")
}

#[test]
fn every_top_level_module_of_the_engine_has_a_layer() {
    let listed: BTreeSet<&str> = LAYERS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
    for entry in std::fs::read_dir(source_dir()).expect("src readable") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().expect("a name").to_string_lossy().to_string();
        if ["lib", "main"].contains(&name.as_str()) {
            continue;
        }
        assert!(listed.contains(name.as_str()), "module `{name}` is in no layer: add it to LAYERS and ARCHITECTURE.md");
    }
}

#[test]
fn imports_never_point_to_a_higher_layer() {
    for (module, used) in imports() {
        for target in used {
            assert!(
                layer_of(&target) <= layer_of(&module),
                "`{module}` ({}) uses `{target}` ({}): imports must point down",
                LAYERS[layer_of(&module)].0,
                LAYERS[layer_of(&target)].0
            );
        }
    }
}

#[test]
fn no_circle_of_imports_among_top_level_modules() {
    let graph = imports();
    // Depth-first search with colours: reaching a module still on the stack closes a circle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = stack.iter().position(|m| m == module) {
            panic!("circle of imports: {} -> {module}", stack[at..].join(" -> "));
        }
        stack.push(module.to_string());
        for target in &graph[module] {
            visit(target, graph, stack, done);
        }
        stack.pop();
        done.insert(module.to_string());
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_import_reader_sees_grouped_and_inline_paths() {
    let code = "use crate::{call::CallKey, trace};\nfn f() { crate::registry::register_service(\"a\", \"b\") }";
    let names: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(names, ["call", "registry", "trace"]);
}
