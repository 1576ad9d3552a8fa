//! Answers one HTTP request: body reading, recording, blocked paths, auth, faults, routing.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;

use crate::body::{InjectedDrop, ResponseBody};
use crate::chat::chat;
use crate::record::RawRequest;
use crate::render::{Api, catalog};
use crate::respond::{
    HandlerResult, NGINX_404, Resp, TEXT, api_error, fault_response, json, model_not_found,
    not_found_page, ollama_error, response, unauthorized,
};
use crate::script::Fault;
use crate::state::Shared;
use crate::time::unix_now;
use crate::{embed, generate, lifecycle};

/// `{"model": …}` (or the older `{"name": …}`) of `/api/show`.
#[derive(Deserialize)]
struct ShowProbe<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Reads the whole request body, at most `limit` bytes.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let data = match frame {
            None => break,
            Some(Err(_)) => return Err(BodyError::Broken),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
        if have + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if rest.is_empty() => first = Some(data),
            Some(f) => {
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
            None => rest.extend_from_slice(&data),
        }
    }
    Ok(match first {
        Some(f) => f,
        None => rest.freeze(),
    })
}

/// Answers one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> HandlerResult {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let api = if path.starts_with("/v1/messages") || parts.headers.contains_key("anthropic-version")
    {
        Api::Anthropic
    } else if path == "/v1" || path.starts_with("/v1/") {
        Api::OpenAi
    } else {
        Api::Ollama
    };
    let read = read_body(body, shared.max_body).await;
    let body = match &read {
        Ok(b) => b.clone(),
        Err(BodyError::TooLarge) => Bytes::new(),
        Err(BodyError::Broken) => return Err(InjectedDrop),
    };
    let bearer_ok = api == Api::Ollama
        || shared.api_key.as_deref().is_none_or(|key| {
            let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
            let bearer = header(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
            // Anthropic's clients send the key as `x-api-key` (or as a bearer token).
            let x_api_key = header(header::HeaderName::from_static("x-api-key"))
                .filter(|_| api == Api::Anthropic);
            bearer.or(x_api_key).is_some_and(|v| v.trim() == key)
        });
    let method = parts.method.clone();
    let uri = parts.uri.clone();
    let path = uri.path();
    shared.log.push(RawRequest::new(parts, body.clone()));

    if shared.is_blocked(path) {
        let mut r = response(
            StatusCode::NOT_FOUND,
            "text/html",
            ResponseBody::full(NGINX_404),
        );
        r.headers_mut()
            .insert(header::SERVER, HeaderValue::from_static("nginx/1.24.0"));
        return Ok(r);
    }
    let server_fault = shared.fault();
    if let Some(f) = &server_fault {
        match f {
            Fault::Refuse => return Err(InjectedDrop),
            Fault::AcceptAndHang => return std::future::pending().await,
            f if f.is_request_level() => return Ok(fault_response(api, f)),
            _ => {}
        }
    }
    if read.is_err() {
        let msg = format!("request body larger than {} bytes", shared.max_body);
        return Ok(api_error(api, StatusCode::PAYLOAD_TOO_LARGE, &msg));
    }
    if !bearer_ok {
        return Ok(unauthorized(api));
    }

    match (&method, path) {
        (&Method::GET | &Method::HEAD, "/") => Ok(response(
            StatusCode::OK,
            TEXT,
            ResponseBody::full(Bytes::from_static(b"Ollama is running")),
        )),
        (&Method::GET | &Method::HEAD, "/api/version") => {
            Ok(json(StatusCode::OK, catalog::version(&shared.version)))
        }
        (&Method::GET | &Method::HEAD, "/api/tags") => Ok(json(
            StatusCode::OK,
            catalog::tags(&shared.catalog().models, &shared.modified_at),
        )),
        (&Method::GET | &Method::HEAD, "/api/ps") => {
            let c = shared.catalog();
            Ok(json(StatusCode::OK, catalog::ps(&c.models, &c.loaded)))
        }
        (&Method::POST, "/api/show") => Ok(show(&shared, &body)),
        (&Method::POST, "/api/pull") => Ok(lifecycle::pull(&shared, &body)),
        (&Method::POST, p @ ("/api/embed" | "/api/embeddings" | "/v1/embeddings")) => {
            Ok(embed::embed(&shared, p, &body))
        }
        (&Method::POST, "/api/generate") => Ok(lifecycle::generate(&shared, &body)),
        (&Method::POST, "/v1/completions") => Ok(generate::answer(&shared, Api::OpenAi, &body)),
        (&Method::POST, "/api/chat") => chat(&shared, Api::Ollama, &body, server_fault).await,
        (&Method::GET, "/v1/models") => Ok(json(
            StatusCode::OK,
            catalog::openai_models(&shared.catalog().models, unix_now()),
        )),
        (&Method::GET, p) if p.starts_with("/v1/models/") => {
            let id = &p["/v1/models/".len()..];
            let c = shared.catalog();
            Ok(match c.find(id) {
                Some(m) => json(StatusCode::OK, catalog::openai_model_body(m, unix_now())),
                None => model_not_found(api, id),
            })
        }
        (&Method::POST, "/v1/chat/completions") => {
            chat(&shared, Api::OpenAi, &body, server_fault).await
        }
        (&Method::POST, "/v1/responses/compact") => Ok(compact(&shared, &body)),
        (&Method::POST, "/v1/responses") => {
            chat(&shared, Api::Responses, &body, server_fault).await
        }
        (&Method::POST, "/v1/messages") => chat(&shared, Api::Anthropic, &body, server_fault).await,
        (&Method::POST, "/v1/messages/count_tokens") => Ok(json(
            StatusCode::OK,
            crate::render::anthropic::count_tokens(&body),
        )),
        _ => Ok(not_found_page(api, &method, path)),
    }
}

/// `/v1/responses/compact`: the model's compaction item.
fn compact(shared: &Shared, body: &Bytes) -> Resp {
    let model = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["model"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if shared.catalog().find(&model).is_none() {
        return model_not_found(Api::OpenAi, &model);
    }
    json(StatusCode::OK, crate::render::responses::compaction(&model))
}

fn show(shared: &Shared, body: &Bytes) -> Resp {
    let probe: ShowProbe<'_> = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return ollama_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid request body: {e}"),
            );
        }
    };
    let Some(name) = probe.model.or(probe.name).filter(|n| !n.is_empty()) else {
        return ollama_error(StatusCode::BAD_REQUEST, "model is required");
    };
    let c = shared.catalog();
    match c.find(&name) {
        Some(m) => json(StatusCode::OK, catalog::show(m, &shared.modified_at)),
        None => ollama_error(StatusCode::NOT_FOUND, &format!("model '{name}' not found")),
    }
}
