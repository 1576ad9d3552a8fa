//! The routes the HTTP/1.1 fast path ([`crate::h1_fast`]) calls without axum's router: the
//! four chat endpoints (`POST /v1/chat/completions`, `/api/chat`, `/v1/messages`,
//! `/v1/responses`), which carry nearly all of a gateway's traffic. Every other request
//! goes to the router, and so does every request hyper serves.
//!
//! A hot route does what the router would: the front ([`FrontLayer::serve`]), the API-key
//! check ([`auth::authenticate`]) and the same handler, so it answers as the router does.
//! The differences on the wire are in the order of headers only: `content-length`, which
//! the router's route adds to the answer and the fast path adds when it writes the head,
//! comes after `date` instead of before it; the routing headers and the request id, which
//! the front leaves outside the header map for the fast path to write
//! ([`crate::answer_head`]), come after the handler's own headers. What it leaves out is the router's own machinery around them: the path
//! look-up, and for each of the three layers a clone of a boxed service and a boxed
//! future (about 4,700 instructions of the 60,000 a plain request costs; callgrind,
//! `bench/instructions.sh`). Two futures are boxed: the handler's, where it is made (so
//! the front's future holds a pointer, not the handler's kilobytes), and the front's.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router as AxumRouter;
use axum::extract::{Request, State};
use axum::response::IntoResponse as _;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use futures::FutureExt as _;
use futures::future::{Either, ready};
use http::Method;
use tower::Service as _;

use crate::api::Api;
use crate::front::{FrontFuture, FrontLayer, HeadOut};
use crate::gateway::Shared;
use crate::{auth, chat, responses};

/// A hot route's handler, boxed.
type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// The router and the hot routes beside it; what a fast-path connection calls.
#[derive(Clone)]
pub(crate) struct Routes {
    app: AxumRouter,
    front: FrontLayer,
    shared: Arc<Shared>,
}

/// A route served without the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hot {
    /// A chat endpoint of one of the three chat APIs.
    Chat(Api),
    /// `POST /v1/responses`.
    Responses,
}

impl Hot {
    /// The hot route of `method` and `path`, if it is one (exact paths, as the router
    /// matches them: no trailing slash).
    fn of(method: &Method, path: &str) -> Option<Hot> {
        if *method != Method::POST {
            return None;
        }
        match path {
            "/v1/chat/completions" => Some(Hot::Chat(Api::OpenAi)),
            "/api/chat" => Some(Hot::Chat(Api::Ollama)),
            "/v1/messages" => Some(Hot::Chat(Api::Anthropic)),
            "/v1/responses" => Some(Hot::Responses),
            _ => None,
        }
    }
}

impl Routes {
    /// `app` (built with `front` as its outer layer, see [`crate::Gateway::app`]) and its
    /// hot routes, which share the front (and so its request ids).
    pub(crate) fn new(app: AxumRouter, front: FrontLayer, shared: Arc<Shared>) -> Routes {
        Routes { app, front, shared }
    }

    /// The router, for what hyper serves.
    pub(crate) fn app(&self) -> &AxumRouter {
        &self.app
    }

    /// Serves `request`: a hot route directly, anything else through the router.
    pub(crate) fn call(
        &mut self,
        request: Request,
    ) -> Either<FrontFuture, RouteFuture<Infallible>> {
        let Some(hot) = Hot::of(request.method(), request.uri().path()) else {
            return Either::Right(self.app.call(request));
        };
        let shared = &self.shared;
        Either::Left(self.front.serve(request, HeadOut::Deferred, |mut request| {
            // The handler's future is boxed where it is made: the front's future then
            // holds a pointer, and moving it (into the front's box among others) copies a
            // few words instead of the handler's kilobytes.
            let answer: HandlerFuture = match auth::authenticate(shared, &mut request) {
                Err(refused) => return Either::Right(ready(Ok(refused.into_response()))),
                Ok(()) => match hot {
                    Hot::Chat(api) => Box::pin(chat::handle(Arc::clone(shared), api, request)),
                    Hot::Responses => {
                        Box::pin(responses::create(State(Arc::clone(shared)), request))
                    }
                },
            };
            Either::Left(answer.map(Ok))
        }))
    }
}

#[cfg(test)]
mod tests {
    use arc_swap::ArcSwap;
    use axum::body::Body;
    use switchyard_router::{MemoryLedger, Router, RouterConfig};
    use tower::ServiceExt as _;

    use super::*;
    use crate::{Gateway, GatewayConfig};

    fn gateway() -> Gateway {
        let router = Router::new(
            RouterConfig::default(),
            Vec::new(),
            Arc::new(MemoryLedger::new()),
        )
        .unwrap();
        Gateway::new(
            GatewayConfig::default(),
            Arc::new(ArcSwap::from_pointee(router)),
        )
    }

    fn request(method: Method, path: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn hot_routes_skip_the_router_and_the_rest_go_through_it() {
        let mut routes = gateway().routes();
        for path in [
            "/v1/chat/completions",
            "/api/chat",
            "/v1/messages",
            "/v1/responses",
        ] {
            let served = routes.call(request(Method::POST, path));
            assert!(matches!(served, Either::Left(_)), "{path}");
            // The router has the same path as a POST-only route: another method is its 405.
            let other = routes.call(request(Method::GET, path));
            assert!(matches!(other, Either::Right(_)), "{path}");
            let Ok(answer) = other.await;
            assert_eq!(
                answer.status(),
                http::StatusCode::METHOD_NOT_ALLOWED,
                "{path}"
            );
        }
        for path in [
            "/healthz",
            "/v1/models",
            "/api/tags",
            "/v1/responses/compact",
        ] {
            let method = if path.ends_with("compact") {
                Method::POST
            } else {
                Method::GET
            };
            assert!(
                matches!(routes.call(request(method, path)), Either::Right(_)),
                "{path}"
            );
        }
        // A hot path the router does not know (a trailing slash) is the router's 404.
        let Ok(answer) = gateway()
            .app()
            .oneshot(request(Method::POST, "/api/chat/"))
            .await;
        assert_eq!(answer.status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn only_the_exact_chat_paths_posted_are_hot() {
        let post = Method::POST;
        assert_eq!(
            Hot::of(&post, "/v1/chat/completions"),
            Some(Hot::Chat(Api::OpenAi))
        );
        assert_eq!(Hot::of(&post, "/api/chat"), Some(Hot::Chat(Api::Ollama)));
        assert_eq!(
            Hot::of(&post, "/v1/messages"),
            Some(Hot::Chat(Api::Anthropic))
        );
        assert_eq!(Hot::of(&post, "/v1/responses"), Some(Hot::Responses));
        for path in [
            "/v1/chat/completions/",
            "/v1/responses/compact",
            "/v1/messages/count_tokens",
            "/api/chat/x",
            "/V1/chat/completions",
            "/",
        ] {
            assert_eq!(Hot::of(&post, path), None, "{path}");
        }
        assert_eq!(Hot::of(&Method::GET, "/v1/chat/completions"), None);
        assert_eq!(Hot::of(&Method::PUT, "/api/chat"), None);
    }
}
