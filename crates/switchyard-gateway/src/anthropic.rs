//! The Anthropic Messages API: `POST /v1/messages` (streamed and not, `?beta=true`
//! accepted), `POST /v1/messages/count_tokens`, and `GET /v1/models` (Anthropic's list
//! shape) and `GET /v1/models/{id}` (its `ModelInfo`) when the request carries
//! `anthropic-version`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use switchyard_core::{ChatRequest, ContentPart, ErrorKind, ProviderError};
use switchyard_router::CatalogEntry;

use crate::api::{Api, ApiError};
use crate::auth::Caller;
use crate::gateway::Shared;
use crate::{catalog, chat, openai};

/// Response header on `count_tokens`: `upstream` when a target's upstream counted, `estimate`
/// when the count is the gateway's own estimate.
pub const TOKEN_COUNT_HEADER: HeaderName = HeaderName::from_static("x-switchyard-token-count");

/// The request header naming Anthropic beta features, forwarded to Anthropic targets.
const BETA_HEADER: HeaderName = HeaderName::from_static("anthropic-beta");

/// The request header Anthropic's SDKs always send.
pub(crate) const VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");

/// `POST /v1/messages`.
pub(crate) fn messages(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> impl Future<Output = Response> + Send {
    chat::handle(shared, Api::Anthropic, request)
}

/// `POST /v1/messages/count_tokens`: forwarded to the target the request would be served
/// by when that target counts tokens (an Anthropic provider; `x-switchyard-token-count:
/// upstream` and the target header), else the gateway's estimate (about four bytes of text a
/// token, `x-switchyard-token-count: estimate`). The caller's privacy and allowed routes
/// apply as to a message.
pub(crate) async fn count_tokens(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match counted(&shared, request).await {
        Ok((tokens, target)) => {
            let mut response = catalog::json(&TokenCount {
                input_tokens: tokens,
            });
            let headers = response.headers_mut();
            let source = if target.is_some() {
                "upstream"
            } else {
                "estimate"
            };
            headers.insert(TOKEN_COUNT_HEADER, HeaderValue::from_static(source));
            if let Some(v) = target.and_then(|t| HeaderValue::try_from(t.to_string()).ok()) {
                headers.insert(chat::TARGET_HEADER, v);
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

/// The count and, when an upstream counted, the target that did.
async fn counted(
    shared: &Arc<Shared>,
    request: Request,
) -> Result<(u64, Option<switchyard_router::TargetRef>), ApiError> {
    let api = Api::Anthropic;
    let (parts, body) = request.into_parts();
    let caller = parts.extensions.get::<Caller>().and_then(|c| c.0.clone());
    let max_body = shared.settings.load().config.max_body_bytes;
    let bytes = chat::read_body(api, &parts.headers, body, max_body).await?;
    let mut members: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(api, format!("invalid request body: {e}")))?;
    // count_tokens bodies have no `max_tokens`; the decoder wants one.
    members.entry("max_tokens").or_insert(1.into());
    let body = serde_json::to_vec(&members).map_err(|e| ApiError::invalid(api, e.to_string()))?;
    let mut chat = switchyard_stream::anthropic::request::decode_request(&body)
        .map_err(|e| ApiError::invalid(api, format!("invalid request body: {e}")))?;
    chat.meta.caller = caller.as_ref().map(|k| k.id.clone());
    chat.meta.anthropic_beta = beta_header(api, &parts.headers);
    chat.meta.privacy = chat::privacy_of(api, caller.as_deref(), &parts.headers)?;
    chat::check_shape(api, &chat)?;
    if caller
        .as_ref()
        .is_some_and(|k| !k.allows_model(&chat.model))
    {
        let message = format!("this API key may not use model `{}`", chat.model);
        let error = ProviderError::new(ErrorKind::PolicyBlocked, message);
        return Err(ApiError::new(api, error));
    }
    let router = shared.router.load_full();
    Ok(match router.count_tokens(&chat).await {
        Some((target, tokens)) => (tokens, Some(target)),
        None => (u64::from(estimate_input_tokens(&chat)), None),
    })
}

/// `GET /v1/models`: Anthropic's list shape for Anthropic clients, OpenAI's otherwise.
pub(crate) async fn list_models(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    if !headers.contains_key(VERSION_HEADER) {
        return openai::list_models(State(shared), Extension(caller)).await;
    }
    let entries = catalog::visible_entries(&shared, &caller).await;
    let data: Vec<ModelObject<'_>> = entries.iter().map(ModelObject::from).collect();
    catalog::json(&ModelPage {
        first_id: data.first().map(|m| m.id),
        last_id: data.last().map(|m| m.id),
        has_more: false,
        data,
    })
}

/// `GET /v1/models/{id}` (the SDKs' `models.retrieve`): Anthropic's `ModelInfo`, and its
/// error shape for an unknown id, when the request carries `anthropic-version`; OpenAI's
/// model object otherwise.
pub(crate) async fn get_model(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    model: Result<Path<String>, PathRejection>,
) -> Response {
    if !headers.contains_key(VERSION_HEADER) {
        return openai::get_model(State(shared), Extension(caller), model).await;
    }
    openai::retrieve(&shared, &caller, Api::Anthropic, model, |entry| {
        catalog::json(&ModelObject::from(entry))
    })
    .await
}

/// The `anthropic-beta` values an Anthropic client sent (every header joined by commas), to
/// forward to Anthropic targets; `None` for other APIs.
pub(crate) fn beta_header(api: Api, headers: &HeaderMap) -> Option<String> {
    if api != Api::Anthropic {
        return None;
    }
    let values: Vec<&str> = headers
        .get_all(BETA_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// About four bytes of text (or schema) a token, at least one: what `message_start` reports
/// before the upstream's own count arrives, and what `count_tokens` answers.
pub(crate) fn estimate_input_tokens(chat: &ChatRequest) -> u32 {
    let mut bytes = 0usize;
    for m in &chat.messages {
        for part in &m.content {
            bytes += match part {
                ContentPart::Text(t) => t.len(),
                // Anthropic bills an image at roughly 1,600 tokens.
                ContentPart::Image(_) => 6_400,
            };
        }
        bytes += m.thinking.as_ref().map_or(0, String::len);
        for call in &m.tool_calls {
            bytes +=
                call.name.len() + serde_json::to_string(&call.arguments).map_or(0, |s| s.len());
        }
    }
    for tool in &chat.tools {
        bytes += tool.name.len()
            + tool.description.as_ref().map_or(0, String::len)
            + tool.parameters.to_string().len();
    }
    u32::try_from(bytes / 4).unwrap_or(u32::MAX).max(1)
}

#[derive(Serialize)]
struct TokenCount {
    input_tokens: u64,
}

#[derive(Serialize)]
struct ModelPage<'a> {
    data: Vec<ModelObject<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ModelObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

impl<'a> From<&'a CatalogEntry> for ModelObject<'a> {
    fn from(entry: &'a CatalogEntry) -> Self {
        ModelObject {
            kind: "model",
            id: &entry.id,
            display_name: &entry.id,
            // Catalogs do not know when a model was made.
            created_at: "1970-01-01T00:00:00Z",
        }
    }
}
