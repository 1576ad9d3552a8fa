//! The front of every route: one tower layer that does, in one future, what every answer
//! needs around its handler.
//!
//! Before the handler: the `authorization` and `x-api-key` values are marked sensitive (so
//! no `Debug` print shows them), the request gets its id ([`RequestIds::assign`]), the
//! caller's right to upstream details is decided ([`detail::decide`]) and the body is
//! guarded ([`intake::guard`]). Around it: a panic becomes a 500 in both APIs' error shape
//! (the connection lives on), and a `request` span (debug level) covers the handler. After
//! it: the id is echoed on the answer, a timed-out body closes the connection,
//! `switchyard_http_requests_total` is counted, and a 5xx is logged.
//!
//! One hand-written layer instead of tower-http's sensitive-headers, request-id, trace and
//! catch-panic layers plus axum `from_fn` middlewares: each of those boxed a future or
//! cloned a boxed service per request, about 19,000 instructions per request together
//! (callgrind, `bench/instructions.sh`); this one boxes one future.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::FutureExt as _;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::api::JSON;
use crate::gateway::Shared;
use crate::telemetry::{self, RequestIds};
use crate::{answer_head, auth, detail, intake};

/// Layer for every route (see the module doc).
#[derive(Clone)]
pub(crate) struct FrontLayer {
    shared: Arc<Shared>,
    ids: RequestIds,
}

impl FrontLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            ids: RequestIds::default(),
        }
    }
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            layer: self.clone(),
        }
    }
}

/// A route behind [`FrontLayer`].
#[derive(Clone)]
pub(crate) struct Front<S> {
    inner: S,
    layer: FrontLayer,
}

/// The future of [`Front`]: one box per request.
pub(crate) type FrontFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> FrontFuture {
        let inner = &mut self.inner;
        self.layer
            .serve(request, HeadOut::Map, |request| inner.call(request))
    }
}

/// Where the front leaves the headers an answer carries outside its header map (the
/// routing headers and the request id, [`crate::answer_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadOut {
    /// Moved into the header map: the router's routes, whose answers hyper (and an
    /// embedder's own server) write from the map.
    Map,
    /// Left in the answer's extensions: the HTTP/1.1 fast path writes them into the head.
    Deferred,
}

impl FrontLayer {
    /// Serves `request` with `handler` inside the front (see the module doc): what
    /// [`Front`] does around its route, for the routes the HTTP/1.1 fast path calls
    /// without axum's router ([`crate::hot`]). `handler` is called at once; its future is
    /// boxed with the front's work into one [`FrontFuture`]. `head` says where the
    /// answer's routing headers and request id end up.
    pub(crate) fn serve<F>(
        &self,
        mut request: Request,
        head: HeadOut,
        handler: impl FnOnce(Request) -> F,
    ) -> FrontFuture
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let started = Instant::now();
        mark_keys_sensitive(request.headers_mut());
        let id = self.ids.assign(&mut request);
        let api = telemetry::api_label(request.uri().path());
        let detailed = detail::decide(&self.shared, &request);
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            uri = %request.uri(),
            version = ?request.version(),
        );
        let (request, body_guard) = intake::guard(&self.shared, request);
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| {
            detail::scoped(detailed, || handler(request))
        }));
        Box::pin(
            async move {
                let answered = match handled {
                    Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                    Err(panic) => Err(panic),
                };
                let mut response = match answered {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(panic) => panic_response(panic),
                };
                body_guard.finish(&mut response);
                match head {
                    HeadOut::Map => {
                        answer_head::into_header_map(&mut response);
                        answer_head::insert_request_id(response.headers_mut(), id);
                    }
                    HeadOut::Deferred => answer_head::set_request_id(&mut response, id),
                }
                let status = response.status();
                telemetry::count_http_request(api, status);
                if status.is_server_error() {
                    tracing::error!(
                        status = status.as_u16(),
                        latency_ms = started.elapsed().as_millis() as u64,
                        "response failed"
                    );
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Marks every value of the `authorization` and `x-api-key` headers sensitive (left out
/// of `Debug` prints). One pass over the few headers a request has costs less than two
/// hashed look-ups.
fn mark_keys_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if name == AUTHORIZATION || name == auth::X_API_KEY {
            value.set_sensitive(true);
        }
    }
}

/// A handler panicked: a 500 with a JSON body readable by both APIs' clients.
fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let mut response = Response::new(Body::from(
        r#"{"error":{"message":"internal error in the gateway","type":"server_error","param":null,"code":"internal_error"}}"#,
    ));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arc_swap::ArcSwap;
    use http_body_util::BodyExt as _;
    use switchyard_router::{MemoryLedger, Router, RouterConfig};
    use tower::ServiceExt as _;

    use super::*;
    use crate::telemetry::REQUEST_ID_HEADER;
    use crate::{Gateway, GatewayConfig};

    fn front<S>(inner: S) -> Front<S> {
        let router = Router::new(
            RouterConfig::default(),
            Vec::new(),
            Arc::new(MemoryLedger::new()),
        )
        .unwrap();
        let gateway = Gateway::new(
            GatewayConfig::default(),
            Arc::new(ArcSwap::from_pointee(router)),
        );
        FrontLayer::new(Arc::clone(&gateway.shared)).layer(inner)
    }

    fn request(id: Option<&str>) -> Request {
        let mut builder = http::Request::post("/v1/chat/completions");
        if let Some(id) = id {
            builder = builder.header(REQUEST_ID_HEADER, id);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_in_the_error_shape_with_the_request_id() {
        let panics_when_called = tower::service_fn(
            |_: Request| -> std::future::Ready<Result<Response, Infallible>> {
                panic!("handler bug")
            },
        );
        let response = front(panics_when_called)
            .oneshot(request(Some("abc")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "abc");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "internal_error");

        let panics_when_polled = tower::service_fn(|_: Request| async {
            if true {
                panic!("handler bug");
            }
            Ok::<Response, Infallible>(Response::new(Body::empty()))
        });
        let response = front(panics_when_polled)
            .oneshot(request(None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            response.headers()[REQUEST_ID_HEADER]
                .to_str()
                .unwrap()
                .starts_with("req_")
        );
    }

    #[tokio::test]
    async fn the_handler_sees_the_request_id_and_sensitive_keys() {
        let echo = tower::service_fn(|request: Request| async move {
            let key = request
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.is_sensitive());
            let id = telemetry::request_id_of(&request);
            let mut response = Response::new(Body::from(format!("{id} {key:?}")));
            *response.status_mut() = StatusCode::OK;
            Ok::<_, Infallible>(response)
        });
        let mut given = request(Some("client-id-1"));
        given
            .headers_mut()
            .insert(AUTHORIZATION, http::HeaderValue::from_static("Bearer k"));
        let response = front(echo).oneshot(given).await.unwrap();
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "client-id-1");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "client-id-1 Some(true)");

        // Not printable: replaced by a fresh id, on the request and on the answer.
        let unusable = http::HeaderValue::from_static("bad id");
        let mut given = request(None);
        given.headers_mut().insert(REQUEST_ID_HEADER, unusable);
        let response = front(echo).oneshot(given).await.unwrap();
        let id = response.headers()[REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(id.starts_with("req_") && id.len() == 20, "{id}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("{id} None"));
    }
}
