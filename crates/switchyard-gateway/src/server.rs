//! The accept loop: TCP_NODELAY on every socket, HTTP/1 and HTTP/2, a deadline for the
//! first request head and an idle timeout on every connection, a cap on open connections
//! that sheds the oldest idle ones first, and graceful shutdown that lets running streams
//! finish within a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::conn::{ConnState, Registry, serve_until_closed, tracked_service};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::h1_fast::{Ended, FastConn, Rewind};
use crate::hot::Routes;
use crate::refusal::RefusalIo;

/// Refuses a listen address reachable from other hosts when no API keys are configured,
/// unless `allow_insecure` says so. Loopback addresses (`127.0.0.0/8`, `::1`) are always
/// fine; the unspecified address (`0.0.0.0`, `::`) counts as reachable.
///
/// ```
/// use switchyard_gateway::check_listen_policy;
/// assert!(check_listen_policy("127.0.0.1:4141".parse().unwrap(), false, false).is_ok());
/// assert!(check_listen_policy("0.0.0.0:4141".parse().unwrap(), false, false).is_err());
/// assert!(check_listen_policy("0.0.0.0:4141".parse().unwrap(), true, false).is_ok());
/// assert!(check_listen_policy("0.0.0.0:4141".parse().unwrap(), false, true).is_ok());
/// ```
pub fn check_listen_policy(
    addr: SocketAddr,
    has_keys: bool,
    allow_insecure: bool,
) -> Result<(), GatewayError> {
    let ip = addr.ip();
    let loopback = match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if loopback || has_keys || allow_insecure {
        Ok(())
    } else {
        Err(GatewayError::InsecureListen { addr })
    }
}

/// HTTP/2 keep-alive ping interval: a peer that vanished is noticed and its connection
/// closed.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long an HTTP/2 keep-alive ping may go unanswered.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

impl Gateway {
    /// The task of one accepted connection: HTTP/1 or HTTP/2 over `stream` until the
    /// peer closes, an error, or the watchdog closes it (no request head in time, idle too
    /// long, shed at the cap). Simple HTTP/1.1 requests are served by the fast path
    /// ([`crate::h1_fast`]) until one is not; hyper serves the rest of the connection.
    fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        routes: &Routes,
        state: Arc<ConnState>,
        graceful: &GracefulShutdown,
        stopping: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
        }
        let settings = self.shared.settings.load();
        let head_deadline = settings.config.header_read_timeout;
        let idle_timeout = settings.config.idle_timeout;
        let mut builder = Builder::new(TokioExecutor::new());
        // No hyper timer for HTTP/1: the watchdog (`ConnState::watch`) times request
        // heads. hyper's header timer would cost a timer per request and close every
        // keep-alive connection idle for one head deadline. (Its default applies only with
        // a timer; `None` says so explicitly.)
        builder.http1().header_read_timeout(None);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(H2_KEEP_ALIVE_INTERVAL))
            .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
        let service = tracked_service(routes.app().clone(), Arc::clone(&state), peer);
        let fast_routes = routes.clone();
        let watcher = graceful.watcher();
        async move {
            let stopped = stopping.clone();
            let mut io = RefusalIo::new(stream, Arc::clone(&state));
            let fast = FastConn {
                io: &mut io,
                routes: fast_routes,
                state: Arc::clone(&state),
                peer,
                shutdown: stopping,
            };
            let watch = state.watch(head_deadline, idle_timeout);
            let ended = match serve_until_closed(&state, fast.serve(), watch).await {
                Ok(ended) => ended,
                Err(closed) => {
                    tracing::debug!(%peer, why = closed.label(), "closing the connection");
                    return;
                }
            };
            let Ended::Handoff(read_already) = ended else {
                return;
            };
            io.request_replayed(&read_already);
            // Handed over during a graceful shutdown: hyper answers the request already
            // read (the watcher would close the connection before reading it), then closes.
            let stopping_now = *stopped.borrow();
            if stopping_now {
                builder.http1().keep_alive(false);
            }
            // Borrows the builder this future owns: `into_owned` would keep a second copy
            // of it per connection.
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(Rewind::new(read_already, io)),
                service,
            );
            let connection = async move {
                if stopping_now {
                    connection.await
                } else {
                    watcher.watch(connection).await
                }
            };
            let watch = state.watch(head_deadline, idle_timeout);
            match serve_until_closed(&state, connection, watch).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                Err(closed) => {
                    tracing::debug!(%peer, why = closed.label(), "closing the connection");
                }
            }
        }
    }

    /// Serves the gateway on `listener` until `shutdown` completes, then stops accepting,
    /// lets running requests (streams included) finish for up to `shutdown_grace`, and
    /// closes what is left (dropping a stream cancels its upstream request).
    ///
    /// Refuses to start (see [`check_listen_policy`]) on a non-loopback address without
    /// keys. Sets TCP_NODELAY on every accepted socket.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let addr = listener.local_addr().map_err(GatewayError::Listener)?;
        {
            let settings = self.shared.settings.load();
            check_listen_policy(
                addr,
                !settings.config.keys.is_empty(),
                settings.config.allow_insecure_non_loopback,
            )?;
        }
        let routes = self.routes();
        let graceful = GracefulShutdown::new();
        // Tells connections on the fast path to close when idle (hyper's are told by
        // `graceful`).
        let (stop, stopping) = watch::channel(false);
        let registry = Arc::new(Registry::default());
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(%addr, "gateway listening");

        loop {
            let max_connections = self.shared.settings.load().config.max_connections.max(1);
            let room = registry.has_room(max_connections);
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept(), if room => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            // Out of file descriptors and the like: back off briefly.
                            tracing::warn!(error = %err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let (state, registered) = registry.register();
                    let shed = registry.shed_over(max_connections);
                    if shed > 0 {
                        tracing::debug!(shed, open = registry.len(), "at max_connections: closed the oldest idle connections");
                    }
                    let task = self.connection(stream, peer, &routes, state, &graceful, stopping.clone());
                    connections.spawn(async move {
                        task.await;
                        drop(registered);
                    });
                }
                () = registry.changed(), if !room => {}
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        drop(listener);
        let grace = self.shared.settings.load().config.shutdown_grace;
        tracing::info!(
            open_connections = connections.len(),
            grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            "shutting down: no new connections; letting running requests finish"
        );
        stop.send_replace(true);
        let finished = async {
            graceful.shutdown().await;
            while connections.join_next().await.is_some() {}
        };
        if tokio::time::timeout(grace, finished).await.is_err() {
            tracing::warn!(
                open_connections = connections.len(),
                "shutdown grace period over; closing the remaining connections"
            );
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        Ok(())
    }
}
