//! Developer tasks: `cargo xtask ci` runs exactly what `.ci/run` runs; `cargo xtask bench`
//! runs the side-by-side load test (`bench/peers-switchyard.sh`: Switchyard vs nginx, and
//! with `PEERS="nginx portkey litellm"` the other gateways too).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "ci" => run("bash", &[".ci/run"]),
        "fuzz-smoke" => run("bash", &[".ci/fuzz-smoke"]),
        "bench" => run(
            "bash",
            &[concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../bench/peers-switchyard.sh"
            )],
        ),
        _ => {
            eprintln!("usage: cargo xtask <ci|fuzz-smoke|bench>");
            ExitCode::from(2)
        }
    }
}

fn run(program: &str, args: &[&str]) -> ExitCode {
    match Command::new(program).args(args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("xtask: {program} {} failed: {status}", args.join(" "));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask: cannot run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}
