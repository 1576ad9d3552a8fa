//! Real `redis-server` processes for tests: started on free loopback ports in temp dirs,
//! with no persistence (`--save "" --appendonly no`), killed on drop. Tests that need them
//! skip when the binary is missing (see [`RedisServer::start`]).
//!
//! - [`RedisServer::start`]: a plain server; [`RedisServer::builder`] adds arguments (an
//!   ACL user, `--replicaof`), TLS with given certificate files, or makes it a Sentinel;
//! - [`RedisCluster::start`]: three masters joined by `redis-cli --cluster create`
//!   ([`RedisCluster::start_tls`]: TLS only, the cluster bus too).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod cluster;

pub use cluster::RedisCluster;

/// One running `redis-server` process (a server or a Sentinel).
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
    spec: RedisServerBuilder,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    /// `redis-server` is not installed (Debian package `redis-server`).
    #[error("redis-server is not installed (apt-get install redis-server)")]
    Missing,
    /// It started but did not accept connections in time, or could not be spawned.
    #[error("redis-server did not start: {0}")]
    Start(String),
}

/// The certificate files of a TLS server (PEM).
#[derive(Debug, Clone)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// What to start: extra arguments, TLS, Sentinel. Made by [`RedisServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    args: Vec<String>,
    tls: Option<TlsFiles>,
    /// `(master, service)` when this is a Sentinel.
    sentinel: Option<(SocketAddr, String)>,
}

impl RedisServerBuilder {
    /// Appends command-line arguments (each a word: `["--user", "alice", "on", ">pw"]`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Serves TLS only (`--port 0 --tls-port PORT`) with this certificate chain and key;
    /// `ca` is the CA file the server is given (clients are not asked for certificates).
    pub fn tls(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        ca: impl Into<PathBuf>,
    ) -> Self {
        self.tls = Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
        });
        self
    }

    /// Makes it a Sentinel monitoring `master` as `service` (quorum 1, down after 1 s,
    /// failover timeout 2 s, so a second failover may follow 4 s after the first).
    pub fn sentinel(mut self, master: SocketAddr, service: &str) -> Self {
        self.sentinel = Some((master, service.to_owned()));
        self
    }

    /// Starts it on a free loopback port and waits until it accepts connections (5 s at
    /// most). [`RedisServerError::Missing`] when the binary is not on `PATH`.
    pub fn start(self) -> Result<RedisServer, RedisServerError> {
        let port = free_port().map_err(|e| RedisServerError::Start(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("sy-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| RedisServerError::Start(e.to_string()))?;
        let mut server = RedisServer {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            spec: self,
        };
        server.spawn()?;
        Ok(server)
    }
}

/// A started server (or cluster) for a test: `Some` when it started; `None` with a printed
/// skip when `redis-server` is not installed, unless `SWITCHYARD_E2E_REQUIRED=1` (as
/// `.ci/run` sets), which makes the missing binary a failure. Any other start error fails
/// the test.
#[allow(clippy::panic)] // test support: a failed start fails the test that asked for it
pub fn started_or_skip<T>(started: Result<T, RedisServerError>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(RedisServerError::Missing) => {
            let required = std::env::var("SWITCHYARD_E2E_REQUIRED").is_ok_and(|v| v.trim() == "1");
            assert!(
                !required,
                "redis-server is missing (SWITCHYARD_E2E_REQUIRED=1: install the Debian package redis-server)"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_error(e: std::io::Error) -> RedisServerError {
    match e.kind() {
        std::io::ErrorKind::NotFound => RedisServerError::Missing,
        _ => RedisServerError::Start(e.to_string()),
    }
}

impl RedisServer {
    /// Starts a plain server on a free loopback port. [`RedisServerError::Missing`] when
    /// the binary is not on `PATH`.
    pub fn start() -> Result<Self, RedisServerError> {
        Self::builder().start()
    }

    /// A server with extra arguments, TLS, or a Sentinel.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    fn command(&self) -> Result<Command, RedisServerError> {
        let port = self.addr.port().to_string();
        let mut cmd = Command::new("redis-server");
        if let Some((master, service)) = &self.spec.sentinel {
            // A Sentinel needs a config file it can rewrite.
            let conf = self.dir.join("sentinel.conf");
            let text = format!(
                "sentinel monitor {service} {} {} 1\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 2000\n",
                master.ip(),
                master.port()
            );
            std::fs::write(&conf, text).map_err(|e| RedisServerError::Start(e.to_string()))?;
            cmd.arg(conf).arg("--sentinel");
        } else {
            cmd.args(["--save", "", "--appendonly", "no"]);
        }
        match &self.spec.tls {
            Some(tls) => {
                cmd.args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca);
            }
            None => {
                cmd.args(["--port", &port]);
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir);
        cmd.args(&self.spec.args);
        Ok(cmd)
    }

    fn spawn(&mut self) -> Result<(), RedisServerError> {
        let child = self
            .command()?
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(start_error)?;
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                return Err(RedisServerError::Start(format!(
                    "it exited with {status} (bad arguments?)"
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.stop();
        Err(RedisServerError::Start(format!(
            "nothing listens on {} after 5 s",
            self.addr
        )))
    }

    /// `redis://127.0.0.1:PORT/0`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.spec.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}/0", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same arguments, empty.
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.stop();
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
