//! The one place that spawns external tools: locating `llvm-profdata` and
//! `llvm-cov` and running `merge` / `export`. Every failure carries the
//! command line, and for a failed run the exit status and stderr.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::export::Export;
use crate::Error;

/// Default `-ignore-filename-regex` for exports: crates.io / git
/// dependencies, the standard library sources and the toolchain's rustlib.
pub const DEFAULT_IGNORE_REGEX: &str =
    r"/\.cargo/(registry|git)/|/rustc/[0-9a-f]+/|/rustc/[0-9]+\.[0-9]+\.[0-9]+/|/lib/rustlib/";

/// Paths of the two LLVM tools, which must match rustc's LLVM version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlvmTools {
    /// `llvm-profdata`.
    pub profdata: PathBuf,
    /// `llvm-cov`.
    pub cov: PathBuf,
}

impl LlvmTools {
    /// Finds the tools: `LLVM_PROFDATA` / `LLVM_COV` first (as
    /// cargo-llvm-cov honours them), then rustup's `llvm-tools` component in
    /// `$(rustc --print sysroot)/lib/rustlib/<host>/bin/`, then
    /// `llvm-profdata-22` / `llvm-cov-22` on `PATH` (Debian's `llvm-22`).
    /// The unversioned system tools are never used: they are usually older
    /// than rustc's LLVM and cannot read its profiles.
    pub fn locate() -> Result<LlvmTools, Error> {
        // Asked at most once, and only when an env override is missing.
        let rustlib_bin = std::cell::OnceCell::new();
        let find = |tool: &'static str, env: &'static str| -> Result<PathBuf, Error> {
            let mut tried = Vec::new();
            if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
                let p = PathBuf::from(&v);
                if let Some(found) = resolve_executable(&p) {
                    return Ok(found);
                }
                tracing::warn!(env, value = %p.display(), "not an executable, looking elsewhere");
                tried.push(format!("{env}={}", p.display()));
            } else {
                tried.push(format!("{env} (unset)"));
            }
            match rustlib_bin.get_or_init(rustlib_bin_dir) {
                Ok(dir) => {
                    let p = dir.join(format!("{tool}{}", std::env::consts::EXE_SUFFIX));
                    if p.is_file() {
                        return Ok(p);
                    }
                    tried.push(p.display().to_string());
                }
                Err(e) => tried.push(format!("rustc sysroot ({e})")),
            }
            let versioned = format!("{tool}-22");
            if let Some(found) = resolve_executable(Path::new(&versioned)) {
                return Ok(found);
            }
            tried.push(format!("{versioned} on PATH"));
            Err(Error::ToolNotFound { tool, env, tried: tried.join(", ") })
        };
        Ok(LlvmTools { profdata: find("llvm-profdata", "LLVM_PROFDATA")?, cov: find("llvm-cov", "LLVM_COV")? })
    }

    /// `llvm-profdata merge -sparse <profraws> -o <out>`.
    pub fn merge(&self, profraws: &[PathBuf], out: &Path) -> Result<(), Error> {
        if profraws.is_empty() {
            return Err(Error::InvalidInput { what: "profraw list", value: String::new(), reason: "nothing to merge" });
        }
        let mut cmd = Command::new(&self.profdata);
        cmd.args(["merge", "-sparse"]).args(profraws).arg("-o").arg(out);
        run(&mut cmd)?;
        Ok(())
    }

    /// `llvm-cov export -format=text -skip-expansions -instr-profile <profdata>
    /// -ignore-filename-regex <DEFAULT_IGNORE_REGEX> <object> [-object <more>]... [sources]`.
    ///
    /// `sources`, when non-empty, restricts the files section to those
    /// source files (functions are always all listed by llvm-cov).
    pub fn export(&self, profdata: &Path, objects: &[PathBuf], sources: &[PathBuf]) -> Result<Export, Error> {
        let Some((first, rest)) = objects.split_first() else {
            return Err(Error::InvalidInput {
                what: "object list",
                value: String::new(),
                reason: "llvm-cov export needs at least one instrumented binary",
            });
        };
        let mut cmd = Command::new(&self.cov);
        cmd.args(["export", "-format=text", "-skip-expansions"])
            .arg(concat_arg("-instr-profile=", profdata.as_os_str()))
            .arg(format!("-ignore-filename-regex={DEFAULT_IGNORE_REGEX}"))
            .arg(first);
        for o in rest {
            cmd.arg("-object").arg(o);
        }
        cmd.args(sources);
        let out = run(&mut cmd)?;
        let command = command_line(&cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            tracing::warn!(command = %command, stderr = %stderr.trim(), "llvm-cov export printed warnings");
        }
        Export::parse(&out.stdout, &command)
    }
}

fn concat_arg(prefix: &str, value: &OsStr) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(value);
    s
}

/// `<sysroot>/lib/rustlib/<host>/bin`, asking `$RUSTC` (or `rustc`).
fn rustlib_bin_dir() -> Result<PathBuf, Error> {
    let rustc = std::env::var_os("RUSTC").filter(|v| !v.is_empty()).unwrap_or_else(|| "rustc".into());
    let sysroot_cmd = &mut Command::new(&rustc);
    sysroot_cmd.args(["--print", "sysroot"]);
    let sysroot = stdout_text(sysroot_cmd)?;
    let version_cmd = &mut Command::new(&rustc);
    version_cmd.arg("-vV");
    let version = stdout_text(version_cmd)?;
    let host = version.lines().find_map(|l| l.strip_prefix("host: ")).map(str::trim).ok_or_else(|| {
        Error::BadToolOutput { command: command_line(version_cmd), reason: "no `host:` line".to_owned() }
    })?;
    Ok(Path::new(sysroot.trim()).join("lib").join("rustlib").join(host).join("bin"))
}

fn stdout_text(cmd: &mut Command) -> Result<String, Error> {
    let out = run(cmd)?;
    String::from_utf8(out.stdout)
        .map_err(|_| Error::BadToolOutput { command: command_line(cmd), reason: "stdout is not UTF-8".to_owned() })
}

/// A path with a separator is checked as is; a bare name is searched on `PATH`.
fn resolve_executable(p: &Path) -> Option<PathBuf> {
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(p)).find(|c| c.is_file())
}

/// Runs `cmd` to completion, capturing output; a non-zero exit is an error.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, Error> {
    let command = command_line(cmd);
    tracing::debug!(command = %command, "running");
    let out = cmd.output().map_err(|source| Error::Spawn { command: command.clone(), source })?;
    if !out.status.success() {
        return Err(Error::ToolFailed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}

/// The command line as a shell would need it, for error messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_command_error_carries_command_status_and_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo broken >&2; exit 3"]);
        let err = run(&mut cmd).expect_err("exit 3");
        let msg = err.to_string();
        assert!(msg.contains("`sh -c 'echo broken >&2; exit 3'`"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.ends_with("broken"), "{msg}");

        let err = run(&mut Command::new("/nonexistent/llvm-cov")).expect_err("missing");
        assert!(err.to_string().starts_with("cannot run `/nonexistent/llvm-cov`"), "{err}");
    }

    #[test]
    fn locate_finds_tools_or_says_what_to_install() {
        match LlvmTools::locate() {
            Ok(tools) => {
                // Real tools reject a bogus profile with a full diagnostic.
                let dir = std::env::temp_dir().join(format!("cloture-coverage-proc-{}", std::process::id()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let raw = dir.join("bogus.profraw");
                std::fs::write(&raw, b"not a profile").expect("write");
                let err = tools.merge(&[raw], &dir.join("out.profdata")).expect_err("bogus profraw");
                let msg = err.to_string();
                assert!(msg.contains("llvm-profdata") && msg.contains(" merge -sparse "), "{msg}");
                assert!(matches!(err, Error::ToolFailed { .. }), "{msg}");
                std::fs::remove_dir_all(&dir).expect("cleanup");
            }
            Err(err) => {
                let msg = err.to_string();
                assert!(msg.contains("rustup component add llvm-tools") && msg.contains("llvm-22"), "{msg}");
            }
        }
    }

    #[test]
    fn export_of_garbage_is_an_error_not_a_panic() {
        // A fake llvm-cov that prints something other than an export.
        let tools = LlvmTools { profdata: "true".into(), cov: "echo".into() };
        let err =
            tools.export(Path::new("p.profdata"), &[PathBuf::from("bin")], &[]).expect_err("echo output is not JSON");
        let msg = err.to_string();
        assert!(msg.starts_with("llvm-cov export from `echo export"), "{msg}");
        assert!(msg.contains("is not a coverage export"), "{msg}");

        let err = tools.export(Path::new("p"), &[], &[]).expect_err("no objects");
        assert!(err.to_string().contains("object list"), "{err}");
    }
}
