//! Developer tasks: `cargo xtask test` is the test command (it installs what the end-to-end
//! tests need — the Python venv with the official `openai`, `ollama` and `anthropic` clients and
//! the OpenAI Agents SDK, OpenClaw with its Node, the Codex CLI and Claude Code — then runs
//! `cargo test --workspace` with those tests required);
//! `cargo xtask ci` runs exactly what `.ci/run` runs; `cargo xtask bench`
//! runs the side-by-side load test (`bench/peers-switchyard.sh`: Switchyard vs nginx, and
//! with `PEERS="nginx portkey litellm"` the other gateways too).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "test" => test(),
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
            eprintln!("usage: cargo xtask <test|ci|fuzz-smoke|bench>");
            ExitCode::from(2)
        }
    }
}

/// The test command: end-to-end prerequisites first, then the whole suite. With
/// `SWITCHYARD_E2E_REQUIRED=1` a missing prerequisite fails its tests instead of skipping them,
/// so a green run means the real clients, OpenClaw and Codex did run.
fn test() -> ExitCode {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for script in [
        ".ci/python-env",
        "crates/switchyard/tests/e2e/openclaw-env",
        "crates/switchyard/tests/e2e/codex-env",
        "crates/switchyard/tests/e2e/claude-code-env",
    ] {
        let code = run("bash", &[&format!("{root}/{script}")]);
        if code != ExitCode::SUCCESS {
            return code;
        }
    }
    match Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["test", "--workspace"])
        .current_dir(root)
        .env("SWITCHYARD_E2E_REQUIRED", "1")
        .status()
    {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("xtask: cargo test --workspace failed: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask: cannot run cargo: {e}");
            ExitCode::FAILURE
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
