//! A real `redis-server` for tests: started on a free loopback port in a temp dir, with no
//! persistence (`--save "" --appendonly no`), killed on drop. Tests that need it skip when
//! the binary is missing (see [`RedisServer::start`]).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One running `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
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

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl RedisServer {
    /// Starts a server on a free loopback port. [`RedisServerError::Missing`] when the
    /// binary is not on `PATH`.
    pub fn start() -> Result<Self, RedisServerError> {
        let port = free_port().map_err(|e| RedisServerError::Start(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("sy-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| RedisServerError::Start(e.to_string()))?;
        let mut server = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), RedisServerError> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.addr.port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RedisServerError::Missing,
                _ => RedisServerError::Start(e.to_string()),
            })?;
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.stop();
        Err(RedisServerError::Start(format!(
            "nothing listens on {} after 5 s",
            self.addr
        )))
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
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

    /// Starts it again on the same port, empty.
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
