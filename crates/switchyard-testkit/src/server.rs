//! [`TestUpstream`]: the listener, its accept loop and the handle tests hold.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ModelSpec, UpstreamConfig};
use crate::handler::handle;
use crate::record::RecordedRequest;
use crate::script::{Fault, Script};
use crate::state::Shared;

/// Connections held open without being served while the server-wide fault is
/// [`Fault::AcceptAndHang`]; more are closed at once.
const MAX_HELD: usize = 1024;

/// Pause after a failed `accept` or bind before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets [`TestUpstream::set_fault`] stop and restart listening synchronously.
#[derive(Debug)]
struct ListenControl {
    addr: SocketAddr,
    /// A duplicate of the listening socket's descriptor: shutting it down stops the
    /// listening at once (connects are refused from then on), whatever the accept loop does.
    live: Mutex<Option<std::net::TcpListener>>,
    /// A listener bound again on the same address, for the accept loop to adopt.
    pending: Mutex<Option<std::net::TcpListener>>,
    /// While refusing: a socket bound to the address but not listening, so that the port
    /// stays ours (connects to it are refused) and listening resumes on the same port.
    reserved: Mutex<Option<socket2::Socket>>,
    /// Wakes the accept loop after either changed.
    wake: Notify,
    /// Connections currently held by [`Fault::AcceptAndHang`].
    held: AtomicUsize,
}

impl ListenControl {
    /// Binds the address (again), remembers a duplicate for [`ListenControl::stop`].
    fn bind(&self) -> io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(self.addr)?;
        listener.set_nonblocking(true)?;
        *lock(&self.live) = Some(listener.try_clone()?);
        Ok(listener)
    }

    /// Stops listening now: later connects are refused.
    fn stop(&self) {
        if let Some(live) = lock(&self.live).take() {
            // On a listening socket this ends the listening state (Linux): pending and
            // later connects are refused, and the accept loop's copy is dead too.
            let _ = socket2::SockRef::from(&live).shutdown(std::net::Shutdown::Both);
        }
        *lock(&self.reserved) = self.reserve().ok();
        self.wake.notify_one();
    }

    /// A socket bound to the address without listening.
    fn reserve(&self) -> io::Result<socket2::Socket> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(self.addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&self.addr.into())?;
        Ok(socket)
    }

    /// Listens again on the same port: on the reserved socket, else on a new one (the
    /// accept loop retries if this bind fails).
    fn restart(&self) {
        let reserved = lock(&self.reserved).take();
        let listener = match reserved {
            Some(socket) => socket.listen(1024).and_then(|()| {
                socket.set_nonblocking(true)?;
                let listener = std::net::TcpListener::from(socket);
                *lock(&self.live) = Some(listener.try_clone()?);
                Ok(listener)
            }),
            None => self.bind(),
        };
        if let Ok(listener) = listener {
            *lock(&self.pending) = Some(listener);
        }
        self.wake.notify_one();
    }
}

/// A scripted upstream on loopback speaking both Ollama's native API (`/api/*`) and
/// OpenAI's (`/v1/*`), with fault injection and request recording.
///
/// Dropping the handle stops the server (as [`TestUpstream::shutdown`] does, without
/// waiting).
#[derive(Debug)]
pub struct TestUpstream {
    shared: Arc<Shared>,
    control: Arc<ListenControl>,
    addr: SocketAddr,
    cancel: CancellationToken,
    accept: Option<JoinHandle<()>>,
}

impl TestUpstream {
    /// Binds `config.listen` (default `127.0.0.1:0`) and starts serving.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(config: UpstreamConfig) -> io::Result<TestUpstream> {
        let std_listener = std::net::TcpListener::bind(config.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let control = Arc::new(ListenControl {
            addr,
            live: Mutex::new(Some(std_listener.try_clone()?)),
            pending: Mutex::new(None),
            reserved: Mutex::new(None),
            wake: Notify::new(),
            held: AtomicUsize::new(0),
        });
        let listener = TcpListener::from_std(std_listener)?;
        let shared = Arc::new(Shared::new(config));
        let cancel = CancellationToken::new();
        let accept = tokio::spawn(accept_loop(
            Arc::clone(&shared),
            Arc::clone(&control),
            listener,
            cancel.clone(),
        ));
        Ok(TestUpstream {
            shared,
            control,
            addr,
            cancel,
            accept: Some(accept),
        })
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL of the Ollama native API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL of the OpenAI-compatible API.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received (at most `record_limit`, oldest dropped first), in order.
    ///
    /// A request is recorded once its body was read, before any fault or blocked path is
    /// applied; connections refused or held by a server-wide [`Fault::Refuse`] /
    /// [`Fault::AcceptAndHang`] never get that far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.snapshot()
    }

    /// The recorded chat requests (`/api/chat`, `/v1/chat/completions`, `/v1/messages`,
    /// `/v1/responses`).
    pub fn chat_requests(&self) -> Vec<RecordedRequest> {
        let mut all = self.shared.log.snapshot();
        all.retain(RecordedRequest::is_chat);
        all
    }

    /// How many requests were received since the start (or the last
    /// [`TestUpstream::clear_requests`]); exact, even past `record_limit`.
    pub fn request_count(&self) -> usize {
        self.shared.log.total()
    }

    /// How many chat requests were received; exact, even past `record_limit`.
    pub fn chat_request_count(&self) -> usize {
        self.shared.log.chat()
    }

    /// Forgets the recorded requests and resets the request counters.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// Sets (or clears, with `None`) the server-wide fault, which overrides every script's.
    ///
    /// [`Fault::Refuse`] stops listening before this returns, so the next connect is
    /// refused; clearing it listens again on the same port before this returns.
    pub fn set_fault(&self, fault: Option<Fault>) {
        let refuse = matches!(fault, Some(Fault::Refuse));
        let previous = self.shared.replace_fault(fault);
        let refused = matches!(previous, Some(Fault::Refuse));
        if refuse && !refused {
            self.control.stop();
        } else if !refuse && refused {
            self.control.restart();
        }
    }

    /// The current server-wide fault.
    pub fn fault(&self) -> Option<Fault> {
        self.shared.fault()
    }

    /// Sets the script of `model`; a model not yet listed is added with default attributes.
    pub fn set_script(&self, model: &str, script: Script) {
        self.shared.edit(|c| {
            if c.find(model).is_none() {
                c.models.push(ModelSpec::new(model));
            }
            c.scripts.insert(model.to_owned(), script);
        });
    }

    /// Replaces the listed models (scripts are kept by name).
    pub fn set_models(&self, models: Vec<ModelSpec>) {
        self.shared.edit(|c| c.models = models);
    }

    /// Sets the models `/api/ps` reports as loaded.
    pub fn set_loaded(&self, models: Vec<String>) {
        self.shared.edit(|c| c.loaded = models);
    }

    /// These paths (and the paths below them: `/v1` blocks `/v1/models`) answer 404 with
    /// an nginx HTML page, as a reverse proxy forwarding only some paths does. Blocked
    /// requests are still recorded.
    pub fn set_blocked_paths(&self, paths: Vec<String>) {
        self.shared.set_blocked(paths);
    }

    /// Chat responses currently being written (from the moment the request was read to the
    /// end of the body).
    pub fn open_streams(&self) -> usize {
        self.shared.streams.open()
    }

    /// Chat responses whose client went away before their end (a response ended on purpose
    /// by a fault is not counted).
    pub fn aborted_streams(&self) -> usize {
        self.shared.streams.aborted()
    }

    /// Stops the server: the listener is closed and every connection dropped.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.accept.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    control: Arc<ListenControl>,
    first: TcpListener,
    cancel: CancellationToken,
) {
    let mut listener = Some(first);
    loop {
        if let Some(next) = lock(&control.pending).take() {
            listener = TcpListener::from_std(next).ok();
        }
        let refusing = matches!(shared.fault(), Some(Fault::Refuse));
        if refusing {
            listener = None;
        } else if listener.is_none() {
            listener = control.bind().and_then(TcpListener::from_std).ok();
            if listener.is_none() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY_PAUSE) => continue,
                }
            }
        }
        let Some(current) = listener.as_ref() else {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = control.wake.notified() => continue,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = control.wake.notified() => {}
            accepted = current.accept() => match accepted {
                Ok((stream, _)) => on_accept(&shared, &control, stream, &cancel),
                // Out of descriptors, or the listener was shut down by `set_fault`.
                Err(_) => tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                },
            },
        }
    }
}

fn on_accept(
    shared: &Arc<Shared>,
    control: &Arc<ListenControl>,
    stream: TcpStream,
    cancel: &CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    if matches!(shared.fault(), Some(Fault::AcceptAndHang)) {
        if control.held.fetch_add(1, Ordering::SeqCst) >= MAX_HELD {
            control.held.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let control = Arc::clone(control);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            drop(stream);
            control.held.fetch_sub(1, Ordering::SeqCst);
        });
        return;
    }
    let shared = Arc::clone(shared);
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let service = service_fn(move |req| handle(Arc::clone(&shared), req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = conn => {}
            () = cancel.cancelled() => {}
        }
    });
}
