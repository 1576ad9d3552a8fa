//! `switchyard`: the local-first LLM gateway's reference binary.

use clap::{Parser, Subcommand};

/// Switchyard: a local-first LLM gateway between your agents and your models.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (not wired yet).
    Serve,
    /// Show the gateway working against a simulated local model (not wired yet).
    Demo,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve | Command::Demo => {
            eprintln!("switchyard: this subcommand is not wired yet; see --help");
            std::process::ExitCode::from(2)
        }
    }
}
