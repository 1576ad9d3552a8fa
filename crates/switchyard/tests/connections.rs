//! `switchyard serve` under the common open-files limit of 1024 (set with `prlimit` on the
//! child, soft and hard, so `serve` cannot raise it): 1,100 connections that send nothing
//! do not stop `/healthz` from answering, and every one of them is closed (shed at the
//! connection cap, or at the head deadline).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Served, TempDir, http, prerequisite};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const SILENT: usize = 1100;
/// Bound on each wait; the head deadline of the test config is 2 s.
const BOUND: Duration = Duration::from_secs(20);

/// Lets this test process hold the 1,100 client sockets: raises (never lowers) its own
/// soft open-files limit towards the hard one.
fn room_for_clients() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|n| n < 4096) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}

fn prlimit_available() -> Option<()> {
    std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
}

/// Reads until the peer closes; whether it did within [`BOUND`].
async fn closed_by_peer(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 512];
    tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_under_1024_open_files_neither_block_healthz_nor_stay_open() {
    if prerequisite(
        prlimit_available(),
        "prlimit (util-linux) to limit the child",
    )
    .is_none()
    {
        return;
    }
    room_for_clients();
    let dir = TempDir::new("nofile");
    let config = dir.write(
        "switchyard.json5",
        r#"{
  server: { listen: "127.0.0.1:0", header_read_timeout_ms: 2000 },
  providers: { up: { api: "ollama", base_url: "http://127.0.0.1:9", discover: false, models: [{ id: "m" }] } },
  health: { probe_interval_ms: 60000 },
}
"#,
    );
    let served = Served::start_with_nofile(&config, 1024).await;
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        let stream = tokio::time::timeout(BOUND, TcpStream::connect(served.addr))
            .await
            .expect("connect in time")
            .expect("connect");
        silent.push(stream);
    }

    let health = http()
        .get(format!("{}/healthz", served.base_url()))
        .send()
        .await
        .expect("/healthz answers while 1,100 silent connections are open");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");

    let mut waits = JoinSet::new();
    for stream in silent {
        waits.spawn(closed_by_peer(stream));
    }
    let mut closed = 0;
    while let Some(done) = waits.join_next().await {
        closed += usize::from(done.unwrap());
    }
    assert_eq!(
        closed, SILENT,
        "every silent connection is closed by the gateway"
    );
    let log = served.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
    // Still serving after all that.
    let again = http()
        .get(format!("{}/healthz", served.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}
