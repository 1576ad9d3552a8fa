//! Open client connections: which are idle, shedding the oldest idle one when the cap is
//! reached, and a watchdog per connection that closes it when a request head does not
//! arrive in time or when it has been idle too long.
//!
//! A connection is *busy* while one of its requests is being answered (from the moment
//! hyper hands the parsed request head to the service until the response body is dropped)
//! and *idle* otherwise, including before its first request. The registry is bounded by the
//! connection cap (plus the one just accepted).
//!
//! Head deadlines: the first request head must be complete `header_read_timeout` after
//! accept. A later HTTP/1 head is timed from its first byte (the socket wrapper reports it
//! through [`ConnState::head_started`]); the watchdog looks at an idle connection every half
//! deadline, so such a head is cut off between one and two deadlines after its first byte.
//! No timer is armed per request (hyper's own header timer was one, and it also closed
//! every keep-alive connection idle for one head deadline, whatever `idle_timeout` said).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router as AxumRouter;
use axum::body::{Body, Bytes};
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::Service as _;

use crate::host;

/// The shortest interval between two looks of the watchdog at a served connection.
const MIN_TICK: Duration = Duration::from_millis(10);

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// No complete request head within the head deadline.
    HeadTimeout,
    /// No request in flight for the idle timeout.
    Idle,
    /// Shed to make room for a new connection at the cap.
    Shed,
}

impl Closed {
    /// For the debug log line.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Closed::HeadTimeout => "no complete request head within the header read timeout",
            Closed::Idle => "idle for the idle timeout",
            Closed::Shed => "shed as the oldest idle connection at max_connections",
        }
    }
}

/// One open connection's state, shared by its task, its requests and the registry.
#[derive(Debug)]
pub(crate) struct ConnState {
    epoch: Instant,
    accepted: Instant,
    /// Requests being answered.
    busy: AtomicUsize,
    /// A request head reached the service.
    served: AtomicBool,
    /// Requests begun so far (tells one pending head from the next).
    begun: AtomicU64,
    /// Bytes of a later request head arrived while idle, and no request began since.
    head_pending: AtomicBool,
    /// Nanoseconds after `epoch` when the connection last became idle.
    idle_since: AtomicU64,
    shed: AtomicBool,
    wake: Notify,
    /// The registry's "there may be room" signal.
    room: Arc<Notify>,
}

impl ConnState {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// A request started; the returned guard ends it when dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> Active {
        self.served.store(true, Ordering::Release);
        self.head_pending.store(false, Ordering::Release);
        self.begun.fetch_add(1, Ordering::AcqRel);
        self.busy.fetch_add(1, Ordering::AcqRel);
        Active(Arc::clone(self))
    }

    /// The first bytes of a request head were read: from now on, if the connection is
    /// idle, its head deadline runs (bytes read while a request is answered, such as a
    /// body after `100 Continue`, do not count).
    pub(crate) fn head_started(&self) {
        if self.is_idle() {
            self.head_pending.store(true, Ordering::Release);
        }
    }

    /// Waits until the connection must close: no first request head by `head_deadline`
    /// after accept, a later head pending for between one and two `head_deadline`s, idle
    /// for `idle_timeout`, or shed.
    pub(crate) async fn watch(&self, head_deadline: Duration, idle_timeout: Duration) -> Closed {
        // How often a served connection is looked at.
        let tick = (head_deadline / 2).max(MIN_TICK);
        // A later head seen pending: the requests begun then, and when it was seen.
        let mut head_seen: Option<(u64, Instant)> = None;
        loop {
            if self.shed.load(Ordering::Acquire) {
                return Closed::Shed;
            }
            let now = Instant::now();
            let next = if !self.served.load(Ordering::Acquire) {
                let due = self.accepted + head_deadline;
                if now >= due {
                    return Closed::HeadTimeout;
                }
                due
            } else if self.is_idle() {
                let since =
                    self.epoch + Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
                let due = since + idle_timeout;
                if now >= due {
                    return Closed::Idle;
                }
                if self.head_pending.load(Ordering::Acquire) {
                    let begun = self.begun.load(Ordering::Acquire);
                    match head_seen {
                        Some((seen_begun, seen)) if seen_begun == begun => {
                            if now >= seen + head_deadline {
                                return Closed::HeadTimeout;
                            }
                        }
                        _ => head_seen = Some((begun, now)),
                    }
                } else {
                    head_seen = None;
                }
                due.min(now + tick)
            } else {
                head_seen = None;
                now + tick.min(idle_timeout)
            };
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

/// Runs `serve` (a connection's serving) until it ends, or until `watch` (its
/// [`ConnState::watch`]) says the connection must close. The watchdog is polled only while
/// the connection is idle: it closes nothing that is busy (shedding picks idle
/// connections), and polling its timer and notifier at every wake-up of a busy connection
/// cost about a twentieth of a plain request's instructions. A timer of the watchdog's
/// that fires while a request runs is seen when the connection is idle again.
pub(crate) async fn serve_until_closed<T>(
    state: &ConnState,
    serve: impl Future<Output = T>,
    watch: impl Future<Output = Closed>,
) -> Result<T, Closed> {
    let mut serve = std::pin::pin!(serve);
    let mut watch = std::pin::pin!(watch);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(served) = serve.as_mut().poll(cx) {
            return Poll::Ready(Ok(served));
        }
        if state.is_idle()
            && let Poll::Ready(closed) = watch.as_mut().poll(cx)
        {
            return Poll::Ready(Err(closed));
        }
        Poll::Pending
    })
    .await
}

/// Marks a request of a connection as running; dropping it makes the connection idle
/// again when no other request runs.
#[derive(Debug)]
pub(crate) struct Active(Arc<ConnState>);

impl Drop for Active {
    fn drop(&mut self) {
        let state = &self.0;
        state
            .idle_since
            .store(state.nanos(Instant::now()), Ordering::Release);
        if state.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            state.room.notify_one();
        }
    }
}

/// A response body that keeps its connection busy until hyper has written and dropped it.
struct ActiveBody {
    inner: Body,
    _active: Active,
}

impl http_body::Body for ActiveBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The service of one connection: `app`, with every request marking the connection busy
/// and carrying the peer's address, and a request whose `Host` breaks RFC 9112's rule
/// refused before it ([`host::refusal`]).
pub(crate) fn tracked_service(
    app: AxumRouter,
    state: Arc<ConnState>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let active = state.begin();
        crate::detail::mark_peer(&mut request, peer);
        let mut app = app.clone();
        let refused = host::refusal(&request);
        async move {
            let response = match refused {
                Some(refused) => refused,
                None => app.call(request).await?,
            };
            Ok(response.map(|inner| {
                Body::new(ActiveBody {
                    inner,
                    _active: active,
                })
            }))
        }
    })
}

/// Every open connection by id.
#[derive(Debug)]
pub(crate) struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// A connection closed or became idle: the accept loop may have room again.
    changed: Arc<Notify>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            changed: Arc::new(Notify::new()),
        }
    }
}

impl Registry {
    /// Registers a connection accepted now; it is removed when the guard drops.
    pub(crate) fn register(self: &Arc<Self>) -> (Arc<ConnState>, Registered) {
        let now = Instant::now();
        let state = Arc::new(ConnState {
            epoch: self.epoch,
            accepted: now,
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            begun: AtomicU64::new(0),
            head_pending: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            wake: Notify::new(),
            room: Arc::clone(&self.changed),
        });
        state.idle_since.store(state.nanos(now), Ordering::Release);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, Arc::clone(&state));
        }
        (
            Arc::clone(&state),
            Registered {
                registry: Arc::clone(self),
                id,
            },
        )
    }

    /// Open connections not yet shed.
    pub(crate) fn len(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }

    /// Whether a connection may be accepted with `max` open at most: there is room, or an
    /// idle connection can be shed for it.
    pub(crate) fn has_room(&self, max: usize) -> bool {
        let Ok(open) = self.open.lock() else {
            return true;
        };
        open.len() < max || open.values().any(|c| c.is_idle())
    }

    /// While more than `max` connections are open, closes the one idle the longest.
    /// Returns how many were shed.
    pub(crate) fn shed_over(&self, max: usize) -> usize {
        let Ok(mut open) = self.open.lock() else {
            return 0;
        };
        let mut shed = 0;
        while open.len() > max {
            let oldest = open
                .iter()
                .filter(|(_, c)| c.is_idle())
                .min_by_key(|(_, c)| c.idle_since.load(Ordering::Acquire))
                .map(|(id, _)| *id);
            let Some(state) = oldest.and_then(|id| open.remove(&id)) else {
                break;
            };
            state.shed.store(true, Ordering::Release);
            state.wake.notify_one();
            shed += 1;
        }
        shed
    }

    /// Resolves when a connection closed or a request ended (there may be room).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Removes its connection from the registry when the connection's task ends.
#[derive(Debug)]
pub(crate) struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.id);
        }
        self.registry.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_is_shed_first_and_busy_ones_never() {
        let registry = Arc::new(Registry::default());
        let (first, _g1) = registry.register();
        let (second, _g2) = registry.register();
        let (third, _g3) = registry.register();
        // The first is busy; the second became idle after the third.
        let busy = first.begin();
        let second_request = second.begin();
        drop(second_request);
        assert!(registry.has_room(3));
        assert_eq!(registry.shed_over(2), 1);
        assert!(third.shed.load(Ordering::Acquire), "third idle the longest");
        assert!(!second.shed.load(Ordering::Acquire));
        assert_eq!(registry.shed_over(0), 1, "only idle ones are shed");
        assert!(second.shed.load(Ordering::Acquire));
        assert!(!first.shed.load(Ordering::Acquire));
        assert!(!registry.has_room(1));
        drop(busy);
        assert!(registry.has_room(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_closes_for_the_head_deadline_then_for_idleness() {
        let registry = Arc::new(Registry::default());
        let (state, _guard) = registry.register();
        let head = Duration::from_secs(5);
        let idle = Duration::from_secs(60);
        assert_eq!(state.watch(head, idle).await, Closed::HeadTimeout);

        let (state, _guard) = registry.register();
        drop(state.begin());
        assert_eq!(state.watch(head, idle).await, Closed::Idle);

        let (state, _guard) = registry.register();
        let _running = state.begin();
        let watch = state.watch(head, idle);
        let shed = async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            registry.shed_over(0);
        };
        // Busy: neither deadline applies, and busy connections are not shed.
        let outcome = tokio::time::timeout(Duration::from_secs(3600), async {
            tokio::join!(watch, shed).0
        })
        .await;
        assert!(outcome.is_err(), "a busy connection stays open");
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_of_a_served_connection_is_consulted_only_while_it_is_idle() {
        let registry = Arc::new(Registry::default());
        let head = Duration::from_secs(5);
        let idle = Duration::from_secs(60);

        // The serving ends first: its output, whatever the watchdog would say later.
        let (state, _guard) = registry.register();
        let served = serve_until_closed(&state, async { 7 }, state.watch(head, idle)).await;
        assert_eq!(served, Ok(7));

        // Idle and never served: the head deadline closes it.
        let (state, _guard) = registry.register();
        let never = std::future::pending::<()>();
        let closed = serve_until_closed(&state, never, state.watch(head, idle)).await;
        assert_eq!(closed, Err(Closed::HeadTimeout));

        // A request runs far past both deadlines and the connection is marked shed
        // meanwhile: nothing closes it until the request ends; then the watchdog does.
        let (state, _guard) = registry.register();
        let running = state.begin();
        let start = Instant::now();
        let serve = async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            state.shed.store(true, Ordering::Release);
            state.wake.notify_one();
            tokio::time::sleep(Duration::from_secs(600)).await;
            drop(running);
            std::future::pending::<()>().await;
        };
        let closed = serve_until_closed(&state, serve, state.watch(head, idle)).await;
        assert_eq!(closed, Err(Closed::Shed));
        assert!(start.elapsed() >= Duration::from_secs(1200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_head_is_cut_off_between_one_and_two_deadlines_after_its_first_byte() {
        let registry = Arc::new(Registry::default());
        let head = Duration::from_secs(10);
        let idle = Duration::from_secs(120);

        // Idle after a request, with no new bytes: only the idle timeout applies.
        let (state, _guard) = registry.register();
        drop(state.begin());
        let start = Instant::now();
        assert_eq!(state.watch(head, idle).await, Closed::Idle);
        assert!(start.elapsed() >= idle);

        // A head starts 37 s into the idle time and never completes.
        let (state, _guard) = registry.register();
        drop(state.begin());
        let watch = state.watch(head, idle);
        let first_byte = async {
            tokio::time::sleep(Duration::from_secs(37)).await;
            state.head_started();
            Instant::now()
        };
        let (closed, first_byte) = tokio::join!(watch, first_byte);
        assert_eq!(closed, Closed::HeadTimeout);
        let after = first_byte.elapsed();
        assert!(after >= head && after <= 2 * head, "{after:?}");

        // A head that completes in time (its request begins) is not cut off; the next
        // idle stretch is timed afresh.
        let (state, _guard) = registry.register();
        drop(state.begin());
        let watch = state.watch(head, idle);
        let served_in_time = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            state.head_started();
            tokio::time::sleep(Duration::from_secs(9)).await;
            let running = state.begin();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(running);
            Instant::now()
        };
        let (closed, idle_from) = tokio::join!(watch, served_in_time);
        assert_eq!(closed, Closed::Idle);
        assert!(idle_from.elapsed() >= idle);

        // Bytes read while a request is answered (a body after `100 Continue`) start no head.
        let (state, _guard) = registry.register();
        let running = state.begin();
        state.head_started();
        drop(running);
        let start = Instant::now();
        assert_eq!(state.watch(head, idle).await, Closed::Idle);
        assert!(start.elapsed() >= idle);
    }
}
