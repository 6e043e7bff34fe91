//! Call sites of calls made through third-party clients (reqwest, hyper-util, tonic), which cannot take
//! `#[track_caller]`: the first frame of the stack that is the caller's own code, as the `file:line:column`
//! `Location::caller()` would give, so call keys stay stable across runs and link to llvm-cov's lines.
//!
//! When a layer or middleware is called, [`caller`] walks the stack's raw return addresses
//! (`backtrace::trace`, nothing resolved) and looks each up in a process-wide cache; an address seen for
//! the first time is resolved once (debug info, inlined frames innermost first) into the caller's own code
//! or "library". Own code is a source file inside the workspace (paths made workspace-relative, as rustc
//! names them), outside `target/` (generated code) and outside cloture itself; the standard library,
//! registry crates (tokio, tower, hyper, reqwest, tonic, futures…) are library. In async code the frame
//! found is the `poll` of the caller's future, whose line is the `.await` (or the call) that is running.
//!
//! Without line tables (a release build without `debug = "line-tables-only"`), the site falls back to the
//! name of the caller's function, with line 0: stable across runs of the same build, but coarser.

use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock};

/// A source location of the caller's own code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Site {
    pub file: &'static str,
    pub line: u32,
    pub column: u32,
}

/// What is known about one return address: the caller's own code there, or `None` for library code.
type Resolved = Option<Site>;

/// The frames looked at before giving up (deep stacks of combinators and runtimes stay well under this).
const MAX_FRAMES: usize = 160;

/// Where the site could not be found.
const UNKNOWN: Site = Site { file: "unknown", line: 0, column: 0 };

fn cache() -> &'static RwLock<HashMap<usize, Resolved>> {
    static CACHE: OnceLock<RwLock<HashMap<usize, Resolved>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The call site in the caller's own code that led to this call.
#[inline(never)]
pub(crate) fn caller() -> Site {
    let mut found = None;
    let mut fallback = None;
    let mut seen = 0;
    backtrace::trace(|frame| {
        seen += 1;
        let ip = frame.ip() as usize;
        let known = cache().read().expect("site cache poisoned").get(&ip).copied();
        let resolved = known.unwrap_or_else(|| {
            let resolved = resolve(frame.ip());
            cache().write().expect("site cache poisoned").insert(ip, resolved);
            resolved
        });
        if let Some(site) = resolved {
            if site.line == 0 {
                // A function name only: in a build without line tables, that is the best there is; in one
                // with them, a crate built without (a dependency in a dev build): keep looking for a line.
                if !line_tables() {
                    found = Some(site);
                    return false;
                }
                fallback.get_or_insert(site);
            } else {
                found = Some(site);
                return false;
            }
        }
        seen < MAX_FRAMES
    });
    found.or(fallback).unwrap_or(UNKNOWN)
}

/// Resolves one return address: its innermost frame (inlined ones included) that is the caller's code.
fn resolve(ip: *mut c_void) -> Resolved {
    let mut resolved = None;
    let mut by_name = None;
    backtrace::resolve(ip, |symbol| {
        if resolved.is_some() {
            return;
        }
        match symbol.filename() {
            Some(file) => {
                if let Some(file) = own_file(file) {
                    resolved = Some(Site {
                        file: intern(&file),
                        line: symbol.lineno().unwrap_or(0),
                        column: symbol.colno().unwrap_or(0),
                    });
                }
            }
            None => {
                let name = symbol.name().map(|name| format!("{name:#}"));
                if let Some(name) = name.filter(|name| !library_symbol(name)) {
                    by_name.get_or_insert(Site { file: intern(&name), line: 0, column: 0 });
                }
            }
        }
    });
    resolved.or(by_name)
}

/// The workspace-relative path of `file` when it is the caller's own source, else `None`.
fn own_file(file: &Path) -> Option<String> {
    let text = file.to_string_lossy().replace('\\', "/");
    let relative = if file.is_absolute() {
        let roots = roots();
        roots.iter().find_map(|root| text.strip_prefix(root.as_str()))?.to_string()
    } else {
        text
    };
    let generated = relative.starts_with("target/") || relative.contains("/target/");
    let ours = own_source_dir().is_some_and(|dir| relative.starts_with(dir));
    (!generated && !ours && !relative.starts_with(".cargo/")).then_some(relative)
}

/// Whether this build has line tables (cloture's own functions resolve to a source file).
fn line_tables() -> bool {
    static LINES: OnceLock<bool> = OnceLock::new();
    *LINES.get_or_init(|| {
        let mut lines = false;
        backtrace::resolve(caller as *mut c_void, |symbol| lines |= symbol.filename().is_some());
        lines
    })
}

/// cloture's own source folder as rustc names it (`engine/src/` in its workspace).
fn own_source_dir() -> Option<&'static str> {
    file!().rsplit_once('/').map(|(dir, _)| dir).filter(|dir| !Path::new(dir).is_absolute())
}

/// The directories paths are made relative to, each ending in `/`: the directory rustc compiled cloture
/// in (the workspace root when cloture is a member of the caller's workspace, found by resolving a
/// function of this file), then the workspace around the current directory.
fn roots() -> &'static [String] {
    static ROOTS: OnceLock<Vec<String>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = Vec::new();
        let mut compiled = None;
        backtrace::resolve(caller as *mut c_void, |symbol| {
            if let Some(file) = symbol.filename().map(|file| file.to_string_lossy().replace('\\', "/")) {
                compiled = compiled.take().or_else(|| file.strip_suffix(file!()).map(str::to_string));
            }
        });
        roots.extend(compiled.filter(|root| root.ends_with('/')));
        let workspace: PathBuf = crate::files::workspace_root();
        let workspace = format!("{}/", workspace.to_string_lossy().replace('\\', "/").trim_end_matches('/'));
        if !roots.contains(&workspace) {
            roots.push(workspace);
        }
        roots
    })
}

/// Whether a function (named without line tables) belongs to the runtime, the client libraries or cloture.
fn library_symbol(name: &str) -> bool {
    const LIBRARIES: &[&str] = &[
        "std",
        "core",
        "alloc",
        "tokio",
        "tower",
        "tower_service",
        "tower_layer",
        "tower_http",
        "hyper",
        "hyper_util",
        "h2",
        "http",
        "http_body",
        "http_body_util",
        "reqwest",
        "reqwest_middleware",
        "tonic",
        "axum",
        "futures",
        "futures_util",
        "futures_core",
        "tracing",
        "cloture",
        "backtrace",
        "async_trait",
        "__rustc",
        "rust_begin_unwind",
    ];
    // `<a::B as c::D>::f`: the type's crate decides; for a generic type (`<F as axum::Handler>`), the trait's.
    let krate = |path: &str| path.trim_start_matches('<').split("::").next().unwrap_or("").trim().to_string();
    let krate = match name.strip_prefix('<').and_then(|inner| inner.split_once(" as ")) {
        Some((ty, _)) if ty.contains("::") => krate(ty),
        Some((_, trait_path)) => krate(trait_path),
        None => krate(name),
    };
    LIBRARIES.contains(&krate.as_str()) || krate.starts_with('_') || krate.is_empty()
}

/// A `'static` copy of `text`, made once per distinct text (source files and functions: a bounded set).
fn intern(text: &str) -> &'static str {
    static NAMES: OnceLock<RwLock<HashMap<String, &'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    if let Some(name) = names.read().expect("names poisoned").get(text) {
        return name;
    }
    let mut names = names.write().expect("names poisoned");
    names.entry(text.to_string()).or_insert_with(|| Box::leak(text.to_string().into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_call_from_here() -> (Site, u32) {
        (caller(), line!())
    }

    #[test]
    fn the_site_is_the_first_frame_outside_cloture_with_a_workspace_relative_path() {
        // This file is cloture's own: the site found is the test harness's caller, which is library code,
        // so nothing of this file may come out.
        let (site, _) = a_call_from_here();
        assert!(!site.file.ends_with("site.rs"), "{site:?}");
    }

    #[test]
    fn own_files_are_workspace_sources_outside_target_and_cloture() {
        let root = roots()[0].clone();
        assert_eq!(own_file(Path::new(&format!("{root}shop/src/orders.rs"))).as_deref(), Some("shop/src/orders.rs"));
        assert_eq!(own_file(Path::new("tests/src/scenario.rs")).as_deref(), Some("tests/src/scenario.rs"));
        assert_eq!(own_file(Path::new(&format!("{root}target/debug/build/shop-1/out/shop.rs"))), None);
        assert_eq!(own_file(Path::new("/rustc/59807616/library/core/src/future/mod.rs")), None);
        assert_eq!(own_file(Path::new("/root/.cargo/registry/src/index/tokio-1.0.0/src/lib.rs")), None);
        assert_eq!(own_file(Path::new(file!())), None, "cloture's own sources are not call sites");
    }

    #[test]
    fn library_functions_are_told_by_their_crate() {
        assert!(library_symbol("tokio::runtime::park::CachedParkThread::block_on"));
        assert!(library_symbol("<reqwest::async_impl::client::Pending as core::future::Future>::poll"));
        assert!(!library_symbol("shop::orders::place::{{closure}}"));
        assert!(!library_symbol("<shop::Orders as shop::Api>::place"));
        assert!(library_symbol("<F as axum::handler::Handler<(M,T1,T2),S>>::call::{{closure}}"));
        assert!(library_symbol("<T as tonic::client::service::GrpcService<ReqBody>>::call"));
        assert!(!library_symbol("<T as shop::Api>::place"));
    }
}
