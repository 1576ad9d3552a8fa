//! Developer tasks: `cargo xtask test` is the test command (it installs what the end-to-end
//! tests need — the Python venv with the official `openai`, `ollama` and `anthropic` clients and
//! the OpenAI Agents SDK, OpenClaw with its Node, the Codex CLI and Claude Code — then runs
//! `cargo test --workspace` with those tests required);
//! `cargo xtask ci` runs exactly what `.ci/run` runs; `cargo xtask bench` runs
//! `bench/bench.sh` (Switchyard next to nginx on every path, against the reference mock
//! upstream; writes `BENCHMARKS.md`); `cargo xtask soak` runs `bench/soak.sh` (1,000 slow
//! streams through the gateway: all complete, peak RSS, open files), whose client is
//! `cargo xtask soak-client` ([`soak`]).

mod soak;

use std::process::{Command, ExitCode};

/// The workspace root.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "test" => test(),
        "ci" => run("bash", &[".ci/run"]),
        "fuzz-smoke" => run("bash", &[".ci/fuzz-smoke"]),
        "bench" => run("bash", &[&format!("{ROOT}/bench/bench.sh")]),
        "pgo" => run("bash", &[&format!("{ROOT}/bench/pgo.sh")]),
        "soak" => soak_script(),
        "soak-client" => soak::main(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!("usage: cargo xtask <test|ci|fuzz-smoke|bench|pgo|soak>");
            ExitCode::from(2)
        }
    }
}

/// The test command: end-to-end prerequisites first, then the whole suite. With
/// `SWITCHYARD_E2E_REQUIRED=1` a missing prerequisite fails its tests instead of skipping them,
/// so a green run means the real clients, OpenClaw and Codex did run.
fn test() -> ExitCode {
    let root = ROOT;
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
    status(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["test", "--workspace"])
            .current_dir(root)
            .env("SWITCHYARD_E2E_REQUIRED", "1"),
        "cargo test --workspace",
    )
}

/// `bench/soak.sh`, told where this binary is (its client is `soak-client`).
fn soak_script() -> ExitCode {
    match std::env::current_exe() {
        Ok(me) => status(
            Command::new("bash")
                .arg(format!("{ROOT}/bench/soak.sh"))
                .env("SOAK_CLIENT", me),
            "bash bench/soak.sh",
        ),
        Err(e) => {
            eprintln!("xtask: cannot find its own binary: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(program: &str, args: &[&str]) -> ExitCode {
    status(
        Command::new(program).args(args),
        &format!("{program} {}", args.join(" ")),
    )
}

/// Runs `command` to its end; success when it exits 0.
fn status(command: &mut Command, what: &str) -> ExitCode {
    match command.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("xtask: {what} failed: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask: cannot run {what}: {e}");
            ExitCode::FAILURE
        }
    }
}
