//! Helpers of the binary's integration tests: temporary directories, running the built
//! `switchyard` binary, waiting for its log lines, finding the Python venv, and skipping
//! (or, with `SWITCHYARD_E2E_REQUIRED=1`, failing) end-to-end tests whose prerequisites are
//! missing.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The built binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("switchyard-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `text` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `switchyard serve` child process whose stderr is collected line by line.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Starts `switchyard serve --config <config>` and waits (up to 20 s) until it listens.
    pub async fn start(config: &Path, envs: &[(&str, &str)]) -> Served {
        Served::start_with(config, envs, &[]).await
    }

    /// Like [`Served::start`], with extra arguments before `serve`.
    pub async fn start_with(config: &Path, envs: &[(&str, &str)], args: &[&str]) -> Served {
        let mut cmd = Command::new(binary());
        cmd.args(args);
        Served::spawn(cmd, config, envs).await
    }

    /// Like [`Served::start`], under `prlimit` with the open-files limit (soft and hard)
    /// at `nofile`: `serve` cannot raise it.
    pub async fn start_with_nofile(config: &Path, nofile: u64) -> Served {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}")).arg(binary());
        Served::spawn(cmd, config, &[]).await
    }

    /// Runs `cmd serve --config <config>` and waits (up to 20 s) until it listens.
    async fn spawn(mut cmd: Command, config: &Path, envs: &[(&str, &str)]) -> Served {
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("SWITCHYARD_LOG", "info")
            .env("NO_PROXY", "*")
            .env_remove("SWITCHYARD_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn switchyard serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut l = sink.lock().unwrap();
                if l.len() < 10_000 {
                    l.push(line);
                }
            }
        });
        let line = wait_for(&log, "listening on http://", Duration::from_secs(20)).await;
        let addr = line
            .split("listening on http://")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect::<String>()
            })
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Served { child, addr, log }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for a log line containing `needle` that appeared after `skip` lines.
    pub async fn wait_for_log_after(&self, skip: usize, needle: &str, timeout: Duration) -> String {
        wait_for_from(&self.log, skip, needle, timeout).await
    }

    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGHUP.
    pub fn hangup(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

async fn wait_for(log: &Arc<Mutex<Vec<String>>>, needle: &str, timeout: Duration) -> String {
    wait_for_from(log, 0, needle, timeout).await
}

async fn wait_for_from(
    log: &Arc<Mutex<Vec<String>>>,
    skip: usize,
    needle: &str,
    timeout: Duration,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let l = log.lock().unwrap();
            if let Some(line) = l.iter().skip(skip).find(|line| line.contains(needle)) {
                return line.clone();
            }
        }
        if Instant::now() > deadline {
            let all = log.lock().unwrap().join("\n");
            panic!("no log line containing {needle:?} within {timeout:?}; log:\n{all}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client for tests (no proxy, short timeout).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The Python venv's interpreter, if `.ci/python-env` created the venv: the workspace's
/// `.venv`, or the one `SWITCHYARD_E2E_VENV` names.
pub fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("SWITCHYARD_E2E_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
        PathBuf::from,
    );
    let py = venv.join("bin/python");
    py.exists().then_some(py)
}

/// Set to `1` (`.ci/run` does) to make a missing end-to-end prerequisite (the Python venv,
/// OpenClaw) fail the test instead of skipping it.
pub const E2E_REQUIRED_ENV: &str = "SWITCHYARD_E2E_REQUIRED";

/// Whether `SWITCHYARD_E2E_REQUIRED` holds `value` that asks for failures.
pub fn e2e_required(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim() == "1")
}

/// An end-to-end prerequisite: `found` as is; when it is missing, a printed skip (`None`)
/// or, with `SWITCHYARD_E2E_REQUIRED=1`, a failure naming what is missing.
pub fn prerequisite<T>(found: Option<T>, missing: &str) -> Option<T> {
    let required = e2e_required(std::env::var(E2E_REQUIRED_ENV).ok().as_deref());
    prerequisite_with(found, required, missing)
}

/// [`prerequisite`] with the setting given.
pub fn prerequisite_with<T>(found: Option<T>, required: bool, missing: &str) -> Option<T> {
    if found.is_none() {
        assert!(
            !required,
            "{missing} ({E2E_REQUIRED_ENV}=1: a missing prerequisite is a failure, not a skip)"
        );
        eprintln!("SKIPPED {missing}");
    }
    found
}

/// Runs one test of the current test binary in a child process with `envs` set (and
/// `SWITCHYARD_E2E_REQUIRED` unset unless `envs` sets it); its exit success and its
/// stdout and stderr together.
pub async fn run_own_test(name: &str, envs: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env_remove(E2E_REQUIRED_ENV)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("test {name} did not finish within 60 s"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// What an end-to-end client script printed, and whether it succeeded.
pub struct ScriptRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// The JSON summary the script prints last on success.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.lines().last().unwrap_or("{}")).unwrap()
    }
}

/// Runs `tests/e2e/<script>` with the venv's Python `py` and the JSON `spec` (at most 90 s),
/// with no proxy and without the SDKs' own environment variables.
pub async fn run_e2e_script(py: &Path, script: &str, spec: &serde_json::Value) -> ScriptRun {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let mut cmd = Command::new(py);
    cmd.arg(scripts.join(script))
        .arg(spec.to_string())
        .current_dir(&scripts)
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OLLAMA_HOST",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
    ] {
        cmd.env_remove(var);
    }
    let child = cmd.spawn().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the Python client did not finish within 90 s")
        .unwrap();
    ScriptRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `switchyard serve` (config in `dir`) with one local provider `up` of `api` (`ollama` or
/// `openai`) at `base_url`, the route `chat` -> `up/chat-model`, no retries, and the key
/// `sk-e2e` (id `e2e`).
pub async fn serve_one_upstream(dir: &TempDir, api: &str, base_url: &str) -> Served {
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "e2e", token: "env:E2E_KEY" }} ] }},
  providers: {{ up: {{ api: "{api}", base_url: "{base_url}", locality: "local",
                       timeouts: {{ connect_ms: 1000, first_token_ms: 10000 }} }} }},
  routes: {{ chat: {{ targets: ["up/chat-model"] }} }},
  retry: {{ max_retries: 0 }},
}}"#
    );
    let path = dir.write("config.json5", &config);
    Served::start(&path, &[("E2E_KEY", "sk-e2e")]).await
}

/// Runs `test` of the current test binary with `env` pointing at an empty directory: it must
/// pass with a skip message, and fail under `SWITCHYARD_E2E_REQUIRED=1` with a message that
/// names `installer` (the script that installs what is missing).
pub async fn missing_prerequisite_skips_or_fails(test: &str, env: &str, installer: &str) {
    let empty = TempDir::new("missing-prerequisite");
    let dir = empty.path().to_str().unwrap().to_owned();
    let (ok, out) = run_own_test(test, &[(env, &dir)]).await;
    assert!(ok && out.contains("SKIPPED"), "{out}");
    let (ok, out) = run_own_test(test, &[(env, &dir), (E2E_REQUIRED_ENV, "1")]).await;
    assert!(
        !ok,
        "a missing prerequisite passed with {E2E_REQUIRED_ENV}=1:\n{out}"
    );
    assert!(
        out.contains(&format!("{E2E_REQUIRED_ENV}=1")) && out.contains(installer),
        "{out}"
    );
}
