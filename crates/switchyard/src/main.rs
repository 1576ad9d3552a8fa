//! `switchyard`: the local-first LLM gateway's reference binary. It reads the config file,
//! builds the providers, the router and the gateway from it, serves the OpenAI and Ollama
//! APIs, reloads on SIGHUP or when the file changes, and offers the tools around it
//! (`demo`, `simulate`, `models`, `route explain`, `config check`, `replay`, `doctor`).

// First: the printing macros are used by the modules below.
#[macro_use]
mod output;

mod check;
mod cli;
mod config;
mod demo;
mod doctor;
mod explain;
mod lifecycle;
mod logging;
mod models;
mod nofile;
mod reload;
mod replay;
mod serve;
mod simulate;
mod tools;
mod wiring;

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand, RouteCommand};

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// buffers (headers, JSON, stream chunks) across threads, where glibc's malloc cost about
/// a tenth of the gateway's CPU under load.
#[global_allocator]
static GLOBAL: switchyard_alloc::MiMalloc = switchyard_alloc::MiMalloc;

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
        Command::Serve(args) => {
            block_on_workers(serve::worker_threads(args), serve::run(config, args))
        }
        Command::Demo => block_on(demo::run()),
        Command::Models(args) => block_on(models::run(config, args)),
        Command::Route(RouteCommand::Explain(args)) => block_on(explain::run(config, args)),
        Command::Config(ConfigCommand::Check(args)) => block_on(check::run(config, args)),
        Command::Doctor(args) => block_on(doctor::run(config, args)),
        Command::Tools(args) => block_on(tools::run(config, args)),
        Command::Simulate(args) => block_on_one_thread(simulate::run(args)),
    };
    ExitCode::from(code)
}

/// Runs `future` on a multi-threaded tokio runtime; exit code 1 if none can be started.
fn block_on(future: impl Future<Output = u8>) -> u8 {
    run_on(tokio::runtime::Builder::new_multi_thread(), future)
}

/// Runs `future` on a tokio runtime with `workers` worker threads; exit code 1 if none
/// can be started.
fn block_on_workers(workers: usize, future: impl Future<Output = u8>) -> u8 {
    if workers <= 1 {
        // One worker: the current-thread scheduler does the same without work-stealing.
        return run_on(tokio::runtime::Builder::new_current_thread(), future);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(workers);
    run_on(builder, future)
}

fn run_on(mut builder: tokio::runtime::Builder, future: impl Future<Output = u8>) -> u8 {
    match builder.enable_all().thread_name("switchyard").build() {
        Ok(rt) => rt.block_on(future),
        Err(e) => {
            errln!("switchyard: cannot start the async runtime: {e}");
            1
        }
    }
}

/// Runs `future` on a single-threaded tokio runtime (the simulator: cheap, and it leaves
/// the other cores to what it is serving); exit code 1 if none can be started.
fn block_on_one_thread(future: impl Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(e) => {
            errln!("switchyard: cannot start the async runtime: {e}");
            1
        }
    }
}
