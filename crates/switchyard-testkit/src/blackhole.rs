//! Addresses that fail in the two ways a network can: refused, and silent.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections a [`BlackHole`] keeps open; older ones are closed beyond this.
const MAX_HELD: usize = 1024;

/// A `127.0.0.1` address where nothing listens: connecting to it is refused.
///
/// The port was bound and released just before; another process could in principle take
/// it in between, which is as unlikely as any ephemeral-port collision.
pub fn refused_addr() -> SocketAddr {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        // The discard port: normally closed on a test machine.
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9)))
}

/// A server that accepts TCP connections and never reads or answers (a black-holed
/// upstream: connects succeed, then every request times out).
///
/// Dropping it closes the listener and every held connection.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl BlackHole {
    /// Binds `127.0.0.1:0` and starts accepting.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start() -> io::Result<BlackHole> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let mut held = VecDeque::new();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            if held.len() >= MAX_HELD {
                                held.pop_front();
                            }
                            held.push_back(stream);
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                }
            }
        });
        Ok(BlackHole { addr, cancel })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
