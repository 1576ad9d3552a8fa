//! A thin HTTP/1 client for plain `http://` upstreams reached without a proxy: its own
//! bounded pool of hyper connections, each one driven by the task of the request that uses
//! it, so the chunks of a streamed answer go from the socket to the decoder without a
//! hand-off to another task (reqwest's connection task and body channel cost a task
//! wake-up per chunk). `https://` upstreams and upstreams behind a proxy keep the reqwest
//! client (rustls, private CA, proxies).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use http::{Request, Response, Uri};
use http_body::Body as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use switchyard_core::{ErrorKind, ProviderError, TimeoutPhase};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::client::{ClientBuildError, ClientConfig, default_headers};

/// Idle connections kept per upstream (as the reqwest client's `pool_max_idle_per_host`).
const MAX_IDLE: usize = 64;

type Driver = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// One connection: the handle that sends requests and the future that runs it.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended.
    driver: Option<Driver>,
}

impl Conn {
    /// Runs the connection as far as it can go now (reads, writes, hands the body a chunk).
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = self.driver.as_mut() {
            if driver.as_mut().poll(cx).is_ready() {
                self.driver = None;
            }
        }
    }

    /// Whether an idle connection can take a request: still open, and ready.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        self.drive(&mut cx);
        self.driver.is_some() && matches!(self.send.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

struct Pool {
    idle: Mutex<Vec<(Conn, Instant)>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
    /// `host:port` to connect to.
    addr: String,
    /// The URL requests go to, for error messages.
    url: String,
    /// Its path and query (the request target).
    path: Uri,
    /// Every request's headers: the configured ones, bearer token, user agent, host.
    headers: HeaderMap,
}

/// A pooled HTTP/1 client for one plain-HTTP URL (an upstream's chat endpoint), sending
/// JSON `POST`s. Cheap to clone.
#[derive(Clone)]
pub struct DirectClient {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for DirectClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectClient")
            .field("addr", &self.pool.addr)
            .finish_non_exhaustive()
    }
}

impl DirectClient {
    /// The direct client for `url`, when it applies: an `http://` URL and no proxy
    /// configured (`None` otherwise: use the reqwest client of [`crate::build_client`]).
    pub fn for_url(config: &ClientConfig, url: &str) -> Result<Option<Self>, ClientBuildError> {
        if config.proxy.is_some() {
            return Ok(None);
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return Ok(None);
        };
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return Ok(None);
        };
        if parsed.scheme() != "http" {
            return Ok(None);
        }
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let Ok(path) = Uri::try_from(&parsed[url::Position::BeforePath..]) else {
            return Ok(None);
        };
        let mut headers = default_headers(config)?;
        let invalid = |e: http::header::InvalidHeaderValue| ClientBuildError::InvalidHeader {
            name: "host".into(),
            reason: e.to_string(),
        };
        headers.insert(HOST, HeaderValue::from_str(&authority).map_err(invalid)?);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
        );
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // `[::1]` as written in a URL is `::1` to connect to.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        Ok(Some(DirectClient {
            pool: Arc::new(Pool {
                idle: Mutex::new(Vec::new()),
                idle_timeout: config.pool_idle_timeout.unwrap_or(Duration::from_secs(90)),
                connect_timeout: config.timeouts.connect,
                addr,
                url: url.to_owned(),
                path,
                headers,
            }),
        }))
    }

    /// The URL it posts to.
    pub fn url(&self) -> &str {
        &self.pool.url
    }

    /// `POST` the JSON `body`: the answer's head, and its body as a stream that
    /// drives the connection. An idle pooled connection that turns out closed before the
    /// request was written is replaced by a new one.
    pub(crate) async fn post(
        &self,
        body: Bytes,
    ) -> Result<(Response<()>, DirectBody), ProviderError> {
        let target = self.pool.url.as_str();
        let mut conn = match self.checkout() {
            Some(conn) => conn,
            None => self.connect(target).await?,
        };
        let mut request = self.request(body);
        for _ in 0..2 {
            match exchange(&mut conn, request).await {
                Ok(response) => {
                    let (parts, incoming) = response.into_parts();
                    let body = DirectBody {
                        incoming,
                        conn: Some(conn),
                        pool: Arc::clone(&self.pool),
                    };
                    return Ok((Response::from_parts(parts, ()), body));
                }
                Err(mut failed) => match failed.take_message() {
                    // Not written: the pooled connection was closed; once more on a new one.
                    Some(unsent) => {
                        request = unsent;
                        conn = self.connect(target).await?;
                    }
                    None => return Err(send_error(failed.error(), target)),
                },
            }
        }
        Err(ProviderError::new(
            ErrorKind::Connect,
            format!("{target}: the connection closed before the request was sent"),
        ))
    }

    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.pool.path.clone();
        *request.headers_mut() = self.pool.headers.clone();
        request
    }

    /// The most recently used idle connection that is still open and not too old.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.pool.idle.lock().ok()?;
        while let Some((mut conn, since)) = idle.pop() {
            if since.elapsed() < self.pool.idle_timeout && conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    async fn connect(&self, target: &str) -> Result<Conn, ProviderError> {
        let connecting = TcpStream::connect(self.pool.addr.as_str());
        let stream = match tokio::time::timeout(self.pool.connect_timeout, connecting).await {
            Err(_elapsed) => {
                return Err(ProviderError::new(
                    ErrorKind::Timeout(TimeoutPhase::Connect),
                    format!(
                        "{target}: no connection within {} ms",
                        self.pool.connect_timeout.as_millis()
                    ),
                ));
            }
            Ok(Err(e)) => return Err(connect_error(&e, target)),
            Ok(Ok(stream)) => stream,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an upstream connection");
        }
        let (send, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ProviderError::new(ErrorKind::Connect, format!("{target}: {e}")))?;
        Ok(Conn {
            send,
            driver: Some(Box::pin(driver)),
        })
    }
}

type Failed = hyper::client::conn::TrySendError<Request<Full<Bytes>>>;

/// Sends `request` on `conn`, driving the connection until the answer's head arrives.
async fn exchange(
    conn: &mut Conn,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, Failed> {
    let mut answer = std::pin::pin!(conn.send.try_send_request(request));
    std::future::poll_fn(|cx| {
        conn.drive(cx);
        answer.as_mut().poll(cx)
    })
    .await
}

/// A refused, unresolvable or failed connection attempt, classified as reqwest's are.
fn connect_error(err: &std::io::Error, target: &str) -> ProviderError {
    let text = err.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = if err.kind() == std::io::ErrorKind::ConnectionRefused {
        ErrorKind::ConnectRefused
    } else if lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
        || lower.contains("dns error")
    {
        ErrorKind::Dns
    } else {
        ErrorKind::Connect
    };
    ProviderError::new(kind, format!("{target}: error connecting: {text}"))
}

/// A failure after the connection was made and before the answer's head.
fn send_error(err: &hyper::Error, target: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Upstream,
        format!("{target}: error sending request: {}", error_text(err)),
    )
}

/// A direct body that broke off: `stream_ended_early`.
pub(crate) fn body_error(err: hyper::Error, target: &str) -> ProviderError {
    let text = error_text(&err);
    ProviderError::ended_early(format!("{target}: error decoding response body: {text}"))
        .with_source(err)
}

fn error_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The body of an answer from [`DirectClient::post`]: polling it drives the connection, and
/// a connection whose answer was read to the end goes back to the pool. Dropping it
/// earlier closes the connection (which cancels the upstream request).
pub(crate) struct DirectBody {
    incoming: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl DirectBody {
    fn release(&mut self, cx: &mut Context<'_>) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Let the connection see the end of the answer, so it can take the next request.
        conn.drive(cx);
        if conn.driver.is_none() || conn.send.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push((conn, Instant::now()));
            }
        }
    }
}

impl Stream for DirectBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(conn) = this.conn.as_mut() {
                conn.drive(cx);
            }
            match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.release(cx);
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
