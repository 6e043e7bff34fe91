//! The `cloture` command: tools around exploration reports and fault catalogs.
//!
//! Explorations themselves run inside the program that starts the system under test (see `cloture::cli`);
//! this binary reads and renders what they wrote, and generates fault catalogs from service sources.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cloture::{Catalog, Report};

const HELP: &str = "\
cloture: coverage-guided fault exploration for HTTP microservices

usage:
  cloture summary [REPORT]                    print the summary of a report (default target/cloture/report.json)
  cloture dot [REPORT]                        print the call graph as Graphviz DOT
  cloture milestones REPORT [PREFIX]          executions until final coverage (of files under PREFIX)
                                              and until every vulnerability was found
  cloture catalog scan SERVICE=FILE... [-o OUT]
                                              generate a fault catalog from service sources
  cloture catalog check FILE                  check a fault catalog
  cloture help                                this help";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cloture: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn report_path(args: &[String]) -> Result<PathBuf> {
    match args {
        [] => Ok(PathBuf::from("target/cloture/report.json")),
        [path] => Ok(PathBuf::from(path)),
        [_, extra, ..] => bail!("unexpected argument `{extra}`"),
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        println!("{HELP}");
        return Ok(());
    };
    match command.as_str() {
        "help" | "-h" | "--help" => println!("{HELP}"),
        "summary" => {
            let report = Report::read(&report_path(rest)?)?;
            print!("{}", report.terminal_summary());
        }
        "dot" => {
            let report = Report::read(&report_path(rest)?)?;
            print!("{}", report.call_graph.dot());
        }
        "catalog" => catalog(rest)?,
        "milestones" => {
            let (path, prefix) = match rest {
                [path] => (path, ""),
                [path, prefix] => (path, prefix.as_str()),
                _ => bail!("usage: cloture milestones REPORT [PREFIX]"),
            };
            let report = Report::read(std::path::Path::new(path))?;
            let m = report.milestones(prefix);
            let show = |n: Option<usize>| n.map_or("-".to_string(), |n| n.to_string());
            println!(
                "order {}: {} executions; final coverage after {}; every vulnerability after {} ({} found)",
                report.config.order,
                m.executions,
                show(m.to_final_coverage),
                show(m.to_all_vulnerabilities),
                report.vulnerabilities.len()
            );
        }
        other => bail!("unknown command `{other}` (try `cloture help`)"),
    }
    Ok(())
}

fn catalog(args: &[String]) -> Result<()> {
    match args.split_first().map(|(c, r)| (c.as_str(), r)) {
        Some(("scan", rest)) => {
            let mut sources = Vec::new();
            let mut output: Option<PathBuf> = None;
            let mut items = rest.iter();
            while let Some(item) = items.next() {
                if item == "-o" || item == "--output" {
                    output = Some(PathBuf::from(items.next().context("-o needs a file")?));
                    continue;
                }
                let (service, file) =
                    item.split_once('=').with_context(|| format!("`{item}` is not of the form SERVICE=FILE"))?;
                let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
                sources.push((service.to_string(), text));
            }
            if sources.is_empty() {
                bail!("catalog scan needs at least one SERVICE=FILE");
            }
            let text = Catalog::scan(&sources).render();
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => print!("{text}"),
            }
        }
        Some(("check", [file])) => {
            let catalog = Catalog::load(std::path::Path::new(file))?;
            print!("{}", catalog.render());
        }
        _ => bail!("usage: cloture catalog scan SERVICE=FILE... [-o OUT] | cloture catalog check FILE"),
    }
    Ok(())
}
