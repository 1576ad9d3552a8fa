//! The trait every model backend implements, and the stream type it returns.

use std::pin::Pin;

use async_trait::async_trait;
use futures::{Stream, StreamExt};

use crate::accumulate::{ChatResponse, ResponseBuilder};
use crate::embed::{EmbedRequest, EmbedResponse};
use crate::error::ProviderError;
use crate::event::ChatEvent;
use crate::generate::GenerateRequest;
use crate::lifecycle::{LoadedModel, PullStream};
use crate::model::ModelInfo;
use crate::passthrough::{RawFrames, ResponsesEndpoint};
use crate::request::{ChatRequest, KeepAlive};

/// A streamed chat answer: events, or a classified error that ends it.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatEvent, ProviderError>> + Send>>;

/// A model backend: an Ollama server, an OpenAI-compatible server, or a router over several.
///
/// `chat` returns once the upstream accepted the request (so errors before any output are
/// returned here, where a caller can still fall back); the stream then yields events until
/// [`ChatEvent::Done`]. Dropping the stream cancels the upstream request.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Starts a chat. The request is borrowed so a caller can try several providers.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError>;

    /// Starts a chat of `request` with the model `model` (an upstream's own name for it)
    /// in place of `request.model`. A router trying several targets calls this, so the
    /// request is never copied per attempt: clients that encode the model separately
    /// override it. The default copies the request only when the names differ.
    async fn chat_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        if request.model == model {
            return self.chat(request).await;
        }
        let mut renamed = request.clone();
        renamed.model = model.to_owned();
        self.chat(&renamed).await
    }

    /// Whether this provider turns tool calls a model writes as text into structured calls
    /// for `model` (text tool-call recovery), so that a model without native tool calling
    /// can still serve a request with tools. `false` by default.
    fn recovers_text_tool_calls(&self, model: &str) -> bool {
        let _ = model;
        false
    }

    /// Whether `model`'s name alone says this provider runs it on another host (Ollama's
    /// `*-cloud` models run on Ollama's servers), whatever its catalog says or before it is
    /// listed: the router then treats the model as cloud. `false` by default.
    fn runs_in_cloud_by_name(&self, model: &str) -> bool {
        let _ = model;
        false
    }

    /// Whether this provider takes OpenAI Responses requests natively for `model`
    /// ([`Provider::responses`]). `false` by default.
    fn serves_responses(&self, model: &str) -> bool {
        let _ = model;
        false
    }

    /// Native pass-through of an OpenAI Responses request: `body` is the client's request
    /// body, sent as it is but for `model` (the upstream's own name) to `endpoint` (which
    /// also says whether the body asks for a stream). The upstream's answer bytes go to `frames` unchanged (SSE events, or
    /// the whole response object); the stream yields the chat events they carry (output,
    /// usage, the end), so routing and accounting see the answer as they see a chat.
    async fn responses(
        &self,
        body: &[u8],
        model: &str,
        endpoint: ResponsesEndpoint,
        frames: &RawFrames,
    ) -> Result<ChatStream, ProviderError> {
        let _ = (body, endpoint, frames);
        Err(unsupported(format_args!("Responses requests to `{model}`")))
    }

    /// The models this provider offers.
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError>;

    /// A cheap liveness check of the upstream.
    async fn health(&self) -> Result<(), ProviderError>;

    /// The upstream's count of `request`'s input tokens for its model `model`, when the
    /// upstream can count (Anthropic's `count_tokens`); `None` (the default) when it cannot.
    async fn count_tokens(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<Option<u64>, ProviderError> {
        let _ = (request, model);
        Ok(None)
    }

    /// Embeddings of `request.input` from the model `model` (the upstream's own name).
    async fn embed(
        &self,
        request: &EmbedRequest,
        model: &str,
    ) -> Result<EmbedResponse, ProviderError> {
        let _ = request;
        Err(unsupported(format_args!("embeddings with `{model}`")))
    }

    /// Completes `request.prompt` (and `suffix`) with the model `model`, streamed as chat
    /// events (text, thinking, usage, done).
    async fn generate(
        &self,
        request: &GenerateRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let _ = request;
        Err(unsupported(format_args!("text completion with `{model}`")))
    }

    /// The upstream server's own version (Ollama's `/api/version`), when it has one.
    async fn server_version(&self) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    /// The models the upstream holds in memory now (Ollama's `/api/ps`); none by default.
    async fn loaded_models(&self) -> Result<Vec<LoadedModel>, ProviderError> {
        Ok(Vec::new())
    }

    /// Pulls (downloads) `model` onto the upstream, reporting progress.
    async fn pull(&self, model: &str) -> Result<PullStream, ProviderError> {
        Err(unsupported(format_args!("pulling `{model}`")))
    }

    /// Loads `model` into memory and keeps it there for `keep_alive` (the upstream's
    /// default when `None`), so the first request does not wait for the load.
    async fn warm(&self, model: &str, keep_alive: Option<&KeepAlive>) -> Result<(), ProviderError> {
        let _ = keep_alive;
        Err(unsupported(format_args!("loading `{model}` ahead of use")))
    }
}

/// The error of an operation a provider does not offer.
pub fn unsupported(what: std::fmt::Arguments<'_>) -> ProviderError {
    ProviderError::new(
        crate::ErrorKind::Unsupported,
        format!("{what} is not supported by this provider"),
    )
}

/// Folds a stream into a whole [`ChatResponse`]; an error if the stream fails or ends
/// without its final event.
pub async fn collect_response(mut stream: ChatStream) -> Result<ChatResponse, ProviderError> {
    let mut builder = ResponseBuilder::default();
    while let Some(event) = stream.next().await {
        builder.push(event?)?;
        if builder.is_done() {
            break;
        }
    }
    builder.finish()
}
