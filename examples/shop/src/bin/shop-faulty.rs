//! `shop-faulty`: fault exploration of the shop, in one process (`make faulty SYSTEM=shop`).
//!
//! Starts the four services on free loopback ports, then lets cloture run the checkout test with faults
//! injected at every call the gateway makes (HTTP to the catalog and payments, gRPC to the inventory).
//! Writes `target/cloture/shop/report.json` and `report.html`. The command line is cloture's
//! (`cloture::cli`: `explore`, `replay <id>`, the explorer's options, the exit codes).

use std::process::ExitCode;

use clap::Parser;
use cloture::cli;
use cloture::{Catalog, Config};
use shop::scenario::CheckoutTest;

/// Explore faults in the shop's gateway
#[derive(Debug, Parser)]
#[command(name = "shop-faulty", after_help = cli::EXIT_CODES)]
struct Faulty {
    #[command(subcommand)]
    command: Option<cli::Command>,
    #[command(flatten)]
    explore: cli::ExploreArgs,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,shop=off".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let faulty: Faulty = match cli::parse() {
        Ok(faulty) => faulty,
        Err(code) => return code,
    };
    let config = match config(&faulty) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("shop-faulty: {error}");
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime builds");
    runtime.block_on(explore(&faulty, config))
}

/// The explorer's settings: the shop's, with the command line's options over them.
fn config(faulty: &Faulty) -> Result<Config, cloture::Error> {
    let root = cli::workspace_root();
    let mut config = Config {
        name: "shop_checkout".to_string(),
        report_dir: Some(root.join("target").join("cloture").join("shop")),
        coverage_paths: vec!["examples/shop/src/".to_string()],
        ..Config::default()
    };
    config.catalog = Catalog::load(&root.join("examples").join("shop").join("faults.catalog"))?;
    config.replay_command =
        format!("cargo run -p shop --bin shop-faulty -- replay {{id}}{}", faulty.explore.replay_flags());
    faulty.explore.configure(config)
}

async fn explore(faulty: &Faulty, config: Config) -> ExitCode {
    let _signals = cloture::signals::Listener::start(config.cancel.clone());
    let shop = match shop::start().await {
        Ok(shop) => shop,
        Err(error) => {
            eprintln!("shop-faulty: cannot start the shop: {error}");
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
    };
    let test = CheckoutTest::new(&shop.url());
    let command = faulty.command.clone().unwrap_or(cli::Command::Explore);
    let code = cli::run(&command, &faulty.explore, &config, || test.clone().run()).await;
    // A clean shutdown, so the coverage profile of the whole run is written at exit.
    if let Err(error) = shop.shutdown().await {
        eprintln!("shop-faulty: shutting the shop down: {error}");
    }
    code
}
