//! `switchyard`: the local-first LLM gateway's reference binary. It reads the config file,
//! builds the providers, the router and the gateway from it, serves the OpenAI and Ollama
//! APIs, reloads on SIGHUP or when the file changes, and offers the tools around it
//! (`demo`, `models`, `route explain`, `config check`, `replay`, `doctor`).

mod check;
mod cli;
mod config;
mod demo;
mod doctor;
mod explain;
mod logging;
mod models;
mod reload;
mod replay;
mod serve;
mod wiring;

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand, RouteCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log_format, default_level);
    let config = cli.config.clone();
    let code = match &cli.command {
        Command::Replay(args) => replay::run(args),
        Command::Serve(args) => block_on(serve::run(config, args)),
        Command::Demo => block_on(demo::run()),
        Command::Models(args) => block_on(models::run(config, args)),
        Command::Route(RouteCommand::Explain(args)) => block_on(explain::run(config, args)),
        Command::Config(ConfigCommand::Check(args)) => block_on(check::run(config, args)),
        Command::Doctor(args) => block_on(doctor::run(config, args)),
    };
    ExitCode::from(code)
}

/// Runs `future` on a multi-threaded tokio runtime; exit code 1 if none can be started.
fn block_on(future: impl Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchyard")
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(e) => {
            eprintln!("switchyard: cannot start the async runtime: {e}");
            1
        }
    }
}
