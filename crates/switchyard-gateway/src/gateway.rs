//! The [`Gateway`]: shared state, the route table and the tower layers.

use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router as AxumRouter;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use switchyard_router::Router;

use crate::auth::AuthLayer;
use crate::config::{ApiKey, GatewayConfig};
use crate::front::FrontLayer;
use crate::hot::Routes;
use crate::intake::BodyBudget;
use crate::limits::RateLimiter;
use crate::responses::ResponseStore;
use crate::{anthropic, embed, generate, lifecycle, ollama, openai, ops, responses};

/// The router behind an atomic pointer: a reload stores a new [`Router`]; each request
/// loads the pointer once and keeps its `Arc<Router>` to the end, so in-flight requests
/// finish on the router they started with.
pub type RouterHandle = Arc<ArcSwap<Router>>;

/// The gateway's settings as the handlers use them.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: GatewayConfig,
    pub(crate) keys: Vec<Arc<ApiKey>>,
}

impl Settings {
    fn new(config: GatewayConfig) -> Self {
        let keys = config.keys.iter().cloned().map(Arc::new).collect();
        Self { config, keys }
    }
}

/// State shared by every handler.
pub(crate) struct Shared {
    pub(crate) router: RouterHandle,
    pub(crate) settings: ArcSwap<Settings>,
    pub(crate) limiter: RateLimiter,
    pub(crate) metrics: ArcSwapOption<PrometheusHandle>,
    pub(crate) warmup: Arc<crate::warmup::Warmup>,
    /// Memory held by request bodies being read.
    pub(crate) bodies: BodyBudget,
    /// Stored Responses API responses (`store: true`).
    pub(crate) responses: ArcSwap<ResponseStore>,
}

/// The HTTP server: OpenAI and Ollama APIs over a hot-swappable [`Router`].
/// Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = self.shared.settings.load();
        f.debug_struct("Gateway")
            .field("config", &settings.config)
            .field("metrics_handle", &self.shared.metrics.load().is_some())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway over `router` with `config`.
    pub fn new(config: GatewayConfig, router: RouterHandle) -> Gateway {
        let limiter = RateLimiter::default();
        limiter.configure(&config.keys);
        Gateway {
            shared: Arc::new(Shared {
                router,
                settings: ArcSwap::from_pointee(Settings::new(config)),
                limiter,
                metrics: ArcSwapOption::empty(),
                warmup: Arc::default(),
                bodies: BodyBudget::default(),
                responses: ArcSwap::from_pointee(ResponseStore::default()),
            }),
        }
    }

    /// Renders `handle` (the Prometheus exporter the binary installed) at `/metrics`.
    #[must_use]
    pub fn with_metrics_handle(self, handle: PrometheusHandle) -> Gateway {
        self.shared.metrics.store(Some(Arc::new(handle)));
        self
    }

    /// Keeps stored Responses API responses in `store` (by default: in memory with
    /// [`crate::ResponseStoreConfig::default`] bounds). Responses stored before are dropped.
    #[must_use]
    pub fn with_response_store(self, store: ResponseStore) -> Gateway {
        self.shared.responses.store(Arc::new(store));
        self
    }

    /// The router handle: store a new router into it to hot-swap.
    pub fn router_handle(&self) -> RouterHandle {
        Arc::clone(&self.shared.router)
    }

    /// Replaces keys and limits (a config reload). Requests already admitted are not
    /// affected; rate-limit levels of keys whose id stays are kept.
    pub fn set_config(&self, config: GatewayConfig) {
        self.shared.limiter.configure(&config.keys);
        self.shared.settings.store(Arc::new(Settings::new(config)));
    }

    /// The current configuration.
    pub fn config(&self) -> GatewayConfig {
        self.shared.settings.load().config.clone()
    }

    /// Every route with its tower layers, ready to serve (or to call in tests).
    ///
    /// Authenticated (when keys are configured): `/v1/*`, `/api/chat`, `/api/tags`,
    /// `/api/show`, `/api/ps`, `/api/pull` (admin keys), `/admin/tools` (admin keys), `/metrics`. Open: `/`, `/api/version`, `/healthz`, `/readyz`.
    pub fn app(&self) -> AxumRouter {
        self.app_with(FrontLayer::new(Arc::clone(&self.shared)))
    }

    /// The router and, beside it, the hot routes the HTTP/1.1 fast path calls without it
    /// ([`crate::hot`]), behind the same front.
    pub(crate) fn routes(&self) -> Routes {
        let front = FrontLayer::new(Arc::clone(&self.shared));
        Routes::new(
            self.app_with(front.clone()),
            front,
            Arc::clone(&self.shared),
        )
    }

    /// [`Gateway::app`] with `front` as its outer layer.
    fn app_with(&self, front: FrontLayer) -> AxumRouter {
        let shared = Arc::clone(&self.shared);
        let authenticated = AxumRouter::new()
            .route("/v1/chat/completions", post(openai::chat_completions))
            .route("/v1/models", get(anthropic::list_models))
            .route("/v1/messages", post(anthropic::messages))
            .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
            .route("/v1/models/{*model}", get(anthropic::get_model))
            .route("/v1/responses", post(responses::create))
            .route("/v1/responses/compact", post(responses::compact))
            .route(
                "/v1/responses/{id}",
                get(responses::get).delete(responses::delete),
            )
            .route(
                "/v1/responses/{id}/input_items",
                get(responses::input_items),
            )
            .route("/api/chat", post(ollama::chat))
            .route("/api/tags", get(ollama::tags))
            .route("/api/show", post(ollama::show))
            .route("/api/ps", get(lifecycle::ps))
            .route("/api/pull", post(lifecycle::pull))
            .route("/api/embed", post(embed::ollama_embed))
            .route("/api/embeddings", post(embed::ollama_embeddings))
            .route("/v1/embeddings", post(embed::openai_embeddings))
            .route("/api/generate", post(generate::ollama_generate))
            .route("/v1/completions", post(generate::openai_completions))
            .route("/metrics", get(ops::metrics))
            .route("/admin/tools", get(crate::tools::tools))
            .route_layer(AuthLayer::new(Arc::clone(&shared)));
        let open = AxumRouter::new()
            .route("/", get(ollama::root))
            .route("/api/version", get(lifecycle::version))
            .route("/healthz", get(ops::healthz))
            .route("/readyz", get(ops::readyz));
        authenticated
            .merge(open)
            .fallback(ops::not_found)
            .method_not_allowed_fallback(ops::method_not_allowed)
            .layer(front)
            .with_state(shared)
    }
}
