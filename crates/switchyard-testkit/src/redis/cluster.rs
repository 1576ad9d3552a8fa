//! [`RedisCluster`]: three masters on loopback, slots spread by `redis-cli --cluster create`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{RedisServer, RedisServerError, free_port, start_error};

/// How long creating the cluster and waiting for `cluster_state:ok` may take.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A running 3-master Redis Cluster (no replicas); its nodes are killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The CA file `redis-cli` trusts when the nodes speak TLS.
    ca: Option<PathBuf>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers (each with its bus on another free port),
    /// joins them with `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`
    /// and waits until every node reports `cluster_state:ok` (20 s at most).
    /// [`RedisServerError::Missing`] when `redis-server` or `redis-cli` is not installed.
    pub fn start() -> Result<Self, RedisServerError> {
        Self::start_with(None)
    }

    /// [`RedisCluster::start`] with TLS only, clients and the cluster bus alike
    /// (`--tls-cluster yes`), with this certificate chain, key and CA file (PEM).
    pub fn start_tls(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        ca: impl Into<PathBuf>,
    ) -> Result<Self, RedisServerError> {
        Self::start_with(Some((cert.into(), key.into(), ca.into())))
    }

    fn start_with(tls: Option<(PathBuf, PathBuf, PathBuf)>) -> Result<Self, RedisServerError> {
        let mut nodes = Vec::with_capacity(3);
        for _ in 0..3 {
            let bus = free_port().map_err(|e| RedisServerError::Start(e.to_string()))?;
            let mut builder = RedisServer::builder()
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--cluster-node-timeout", "2000", "--cluster-port"])
                .args([bus.to_string()]);
            if let Some((cert, key, ca)) = &tls {
                builder = builder.tls(cert, key, ca).args([
                    "--tls-cluster",
                    "yes",
                    "--tls-replication",
                    "yes",
                ]);
            }
            nodes.push(builder.start()?);
        }
        let cluster = Self {
            nodes,
            ca: tls.map(|(_, _, ca)| ca),
        };
        cluster.create()?;
        cluster.wait_ok()?;
        Ok(cluster)
    }

    /// `redis-cli` with TLS options when the nodes speak TLS.
    fn cli(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        if let Some(ca) = &self.ca {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    fn create(&self) -> Result<(), RedisServerError> {
        let mut child = self
            .cli()
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| n.addr().to_string()))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(start_error)?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(RedisServerError::Start(format!(
                        "redis-cli --cluster create exited with {status}"
                    )));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RedisServerError::Start(
                        "redis-cli --cluster create did not finish in 20 s".to_owned(),
                    ));
                }
            }
        }
    }

    fn wait_ok(&self) -> Result<(), RedisServerError> {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if self
                .nodes
                .iter()
                .all(|n| self.cluster_state_ok(n).unwrap_or(false))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(RedisServerError::Start(
            "the cluster did not report cluster_state:ok in 20 s".to_owned(),
        ))
    }

    /// `redis+cluster://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C` (`rediss+cluster` with TLS).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| n.addr().to_string()).collect();
        let scheme = if self.ca.is_some() { "rediss" } else { "redis" };
        format!("{scheme}+cluster://{}", hosts.join(","))
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    fn cluster_state_ok(&self, node: &RedisServer) -> std::io::Result<bool> {
        let out = self
            .cli()
            .args(["-h", "127.0.0.1", "-p", &node.addr().port().to_string()])
            .args(["cluster", "info"])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
    }
}
