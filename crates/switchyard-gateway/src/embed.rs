//! Embeddings on both APIs: Ollama's `POST /api/embed` and older `POST /api/embeddings`,
//! OpenAI's `POST /v1/embeddings`. Routed like chats (routes, privacy, fallback, budgets
//! priced per input token, the per-provider concurrency limit and queue, the decision
//! record, headers, metrics) through [`Router::route_with`]; a target whose provider has
//! no embeddings is skipped with `unsupported`.
//!
//! [`Router::route_with`]: switchyard_router::Router::route_with

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use http::header::CONTENT_TYPE;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, EmbedRequest, EmbedResponse, FinishReason, Provider,
    ProviderError, Usage,
};
use switchyard_router::Dispatch;
use switchyard_stream::embed::{ollama, openai};

use crate::api::{Api, ApiError, JSON};
use crate::body::TokenAccount;
use crate::chat::{Admitted, admit, authorize_model, routing_headers};
use crate::gateway::Shared;

/// Which endpoint, and so which answer shape.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `/api/embed`.
    OllamaEmbed,
    /// `/api/embeddings` (one `prompt`, one `embedding`).
    OllamaLegacy,
    /// `/v1/embeddings`.
    OpenAi(openai::EncodingFormat),
}

impl Shape {
    fn api(self) -> Api {
        match self {
            Shape::OllamaEmbed | Shape::OllamaLegacy => Api::Ollama,
            Shape::OpenAi(_) => Api::OpenAi,
        }
    }
}

/// `POST /api/embed`.
pub(crate) async fn ollama_embed(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    handle(shared, Shape::OllamaEmbed, request).await
}

/// `POST /api/embeddings` (the older endpoint).
pub(crate) async fn ollama_embeddings(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    handle(shared, Shape::OllamaLegacy, request).await
}

/// `POST /v1/embeddings`.
pub(crate) async fn openai_embeddings(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    handle(
        shared,
        Shape::OpenAi(openai::EncodingFormat::Float),
        request,
    )
    .await
}

async fn handle(shared: Arc<Shared>, shape: Shape, request: Request) -> Response {
    match run(shared, shape, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn run(shared: Arc<Shared>, shape: Shape, request: Request) -> Result<Response, ApiError> {
    let api = shape.api();
    let Admitted {
        started,
        body,
        caller,
        meta,
    } = admit(&shared, api, request).await?;
    let invalid = |e: switchyard_stream::RequestError| ApiError::invalid(api, e.to_string());
    let (mut embed, shape) = match shape {
        Shape::OpenAi(_) => {
            let (req, format) = openai::decode_request(&body).map_err(invalid)?;
            (req, Shape::OpenAi(format))
        }
        _ => (ollama::decode_request(&body).map_err(invalid)?, shape),
    };
    drop(body);
    embed.meta = meta;
    authorize_model(api, caller.as_deref(), &embed.model)?;
    // The router plans and checks policy on a request that stands for this one.
    let mut probe = ChatRequest::new(embed.model.clone(), Vec::new());
    probe.meta = embed.meta.clone();
    let model = embed.model.clone();
    let call = EmbedCall {
        request: embed,
        answer: Mutex::new(None),
    };
    let router = shared.router.load_full();
    let mut routed = router
        .route_with(&probe, &call)
        .await
        .map_err(|failure| crate::skipped::refusal(api, failure))?;
    let account = TokenAccount::new(&shared, caller.as_ref().map(|k| k.id.as_str()));
    while let Some(event) = routed.next().await {
        if let ChatEvent::Usage(usage) = event.map_err(|e| ApiError::new(api, e))? {
            account.charge(usage.total_tokens()).await;
        }
    }
    let answer = call
        .answer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .ok_or_else(|| {
            ApiError::new(
                api,
                ProviderError::ended_early("the embeddings answer was lost"),
            )
        })?;
    let mut out = Vec::with_capacity(64 + answer.vectors.len() * 4096);
    match shape {
        Shape::OllamaEmbed => ollama::encode_response(&answer, &model, &mut out),
        Shape::OllamaLegacy => ollama::encode_legacy_response(&answer, &mut out),
        Shape::OpenAi(format) => openai::encode_response(&answer, &model, format, &mut out),
    }
    let mut response = Response::new(Body::from(out));
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    routing_headers(&mut response, &routed, started, api);
    Ok(response)
}

/// The embeddings call at the end of a routed request: the vectors are kept aside, the
/// router sees the input tokens (spend, budgets, metrics) and the end.
struct EmbedCall {
    request: EmbedRequest,
    answer: Mutex<Option<EmbedResponse>>,
}

#[async_trait]
impl Dispatch for EmbedCall {
    async fn call(
        &self,
        provider: &Arc<dyn Provider>,
        _request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let answer = provider.embed(&self.request, model).await?;
        if answer.vectors.len() != self.request.input.len() {
            return Err(ProviderError::malformed(format!(
                "{} inputs but {} vectors in the answer",
                self.request.input.len(),
                answer.vectors.len()
            )));
        }
        let usage = Usage {
            prompt_tokens: answer.prompt_tokens,
            completion_tokens: 0,
            ..Usage::default()
        };
        *self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
        let events = [
            Ok(ChatEvent::Usage(usage)),
            Ok(ChatEvent::done(FinishReason::Stop)),
        ];
        Ok(Box::pin(futures::stream::iter(events)))
    }
}
