//! Answers one HTTP request: body reading, recording, blocked paths, auth, faults, routing.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::body::{End, InjectedDrop, Plan, ResponseBody, StreamGuard, apply_fault};
use crate::record::RawRequest;
use crate::render::{Api, catalog, ollama, openai};
use crate::script::Fault;
use crate::state::Shared;
use crate::time::unix_now;

type Resp = Response<ResponseBody>;

/// What the service answers: a response, or [`InjectedDrop`] to close the connection
/// without one.
pub(crate) type HandlerResult = Result<Resp, InjectedDrop>;

const JSON: &str = "application/json; charset=utf-8";
const NDJSON: &str = "application/x-ndjson";
const EVENT_STREAM: &str = "text/event-stream";
const TEXT: &str = "text/plain; charset=utf-8";

const NGINX_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";

/// The fields of a chat request the server looks at (everything else is skipped).
#[derive(Deserialize)]
struct ChatProbe<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// `{"model": …}` (or the older `{"name": …}`) of `/api/show`.
#[derive(Deserialize)]
struct ShowProbe<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

fn response(status: StatusCode, content_type: &'static str, body: ResponseBody) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    response(status, JSON, ResponseBody::full(body))
}

fn ollama_error(status: StatusCode, message: &str) -> Resp {
    json(status, ollama::error_body(message))
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Resp {
    json(status, openai::error_body(message, kind, code))
}

/// An error in the API's own shape, with OpenAI's `type`/`code` derived from the status
/// (and, for 400 and 429, from the message: "context length" gives
/// `context_length_exceeded`, "quota" gives `insufficient_quota`).
fn api_error(api: Api, status: StatusCode, message: &str) -> Resp {
    match api {
        Api::Ollama => ollama_error(status, message),
        Api::OpenAi => {
            let lower = message.to_ascii_lowercase();
            let (kind, code) = match status.as_u16() {
                400 if lower.contains("context length") => {
                    ("invalid_request_error", Some("context_length_exceeded"))
                }
                401 => ("invalid_request_error", Some("invalid_api_key")),
                403 => (
                    "invalid_request_error",
                    Some("unsupported_country_region_territory"),
                ),
                404 => ("invalid_request_error", Some("model_not_found")),
                429 if lower.contains("quota") => {
                    ("insufficient_quota", Some("insufficient_quota"))
                }
                429 => ("requests", Some("rate_limit_exceeded")),
                s if s >= 500 => ("server_error", None),
                _ => ("invalid_request_error", None),
            };
            openai_error(status, message, kind, code)
        }
    }
}

fn not_found_page(api: Api, method: &Method, path: &str) -> Resp {
    match api {
        Api::Ollama => response(
            StatusCode::NOT_FOUND,
            TEXT,
            ResponseBody::full(Bytes::from_static(b"404 page not found")),
        ),
        Api::OpenAi => openai_error(
            StatusCode::NOT_FOUND,
            &format!("Invalid URL ({method} {path})"),
            "invalid_request_error",
            None,
        ),
    }
}

fn model_not_found(api: Api, model: &str) -> Resp {
    match api {
        Api::Ollama => ollama_error(
            StatusCode::NOT_FOUND,
            &format!("model \"{model}\" not found, try pulling it first"),
        ),
        Api::OpenAi => openai_error(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
    }
}

fn unauthorized(api: Api) -> Resp {
    match api {
        Api::Ollama => ollama_error(StatusCode::UNAUTHORIZED, "unauthorized"),
        Api::OpenAi => openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
    }
}

fn rate_limited(api: Api, retry_after_secs: u64) -> Resp {
    let mut r = match api {
        Api::Ollama => ollama_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("rate limit exceeded, retry after {retry_after_secs} seconds"),
        ),
        Api::OpenAi => {
            let mut r = openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Rate limit reached for requests. Please try again in {retry_after_secs}s."
                ),
                "requests",
                Some("rate_limit_exceeded"),
            );
            let h = r.headers_mut();
            h.insert(
                HeaderName::from_static("x-ratelimit-limit-requests"),
                HeaderValue::from(60u32),
            );
            h.insert(
                HeaderName::from_static("x-ratelimit-remaining-requests"),
                HeaderValue::from(0u32),
            );
            if let Ok(v) = HeaderValue::try_from(format!("{retry_after_secs}s")) {
                h.insert(HeaderName::from_static("x-ratelimit-reset-requests"), v);
            }
            r
        }
    };
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// The response for a request-level fault other than `Refuse` / `AcceptAndHang`.
fn fault_response(api: Api, fault: &Fault) -> Resp {
    match fault {
        Fault::HttpError { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            api_error(api, status, message)
        }
        Fault::RateLimited { retry_after_secs } => rate_limited(api, *retry_after_secs),
        _ => unauthorized(api),
    }
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
    let api = if path == "/v1" || path.starts_with("/v1/") {
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
    let bearer_ok = api != Api::OpenAi
        || shared.api_key.as_deref().is_none_or(|key| {
            parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|v| v.trim() == key)
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
        _ => Ok(not_found_page(api, &method, path)),
    }
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

async fn chat(
    shared: &Shared,
    api: Api,
    body: &Bytes,
    server_fault: Option<Fault>,
) -> HandlerResult {
    let probe: ChatProbe<'_> = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return Ok(api_error(
                api,
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON body: {e}"),
            ));
        }
    };
    let Some(model) = probe.model.filter(|m| !m.is_empty()) else {
        let msg = match api {
            Api::Ollama => "model is required",
            Api::OpenAi => "you must provide a model parameter",
        };
        return Ok(api_error(api, StatusCode::BAD_REQUEST, msg));
    };
    let stream = probe.stream.unwrap_or(api == Api::Ollama);
    let include_usage = probe
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let Some(entry) = shared.chat_entry(&model, api) else {
        return Ok(model_not_found(api, &model));
    };
    if entry.embedding_only {
        let msg = format!("\"{model}\" does not support chat");
        return Ok(api_error(api, StatusCode::BAD_REQUEST, &msg));
    }
    // A server-wide stream fault takes precedence over the script's.
    let fault = server_fault.or(entry.fault);
    let fast = shared.fast;
    let mut guard = StreamGuard::new(&shared.streams);
    if !fast && !entry.delays.before_headers.is_zero() {
        tokio::time::sleep(entry.delays.before_headers).await;
    }
    match &fault {
        Some(Fault::Refuse) => {
            guard.complete();
            return Err(InjectedDrop);
        }
        Some(Fault::AcceptAndHang) => return std::future::pending().await,
        Some(f) if f.is_request_level() => {
            let r = fault_response(api, f);
            return Ok(r.map(|b| b.with_guard(guard)));
        }
        _ => {}
    }
    let r = &entry.rendered;
    if !stream {
        let half = |b: &Bytes| b.slice(..b.len() / 2);
        let body = match &fault {
            Some(Fault::HangAfterChunks(_)) => return std::future::pending().await,
            Some(Fault::DropAfterChunks(_)) => ResponseBody::paced(Plan {
                frames: vec![half(&r.full)],
                end: End::Abort,
                before_first: Duration::ZERO,
                between: Duration::ZERO,
            }),
            Some(Fault::MalformedLine) => ResponseBody::full(r.malformed.clone()),
            Some(Fault::ErrorLine(msg)) => {
                let resp = api_error(api, StatusCode::INTERNAL_SERVER_ERROR, msg);
                return Ok(resp.map(|b| b.with_guard(guard)));
            }
            Some(Fault::NoDone) => ResponseBody::full(half(&r.full)),
            _ => ResponseBody::full(r.full.clone()),
        };
        return Ok(response(StatusCode::OK, JSON, body.with_guard(guard)));
    }
    let content_type = match api {
        Api::Ollama => NDJSON,
        Api::OpenAi => EVENT_STREAM,
    };
    let body = if fast && fault.is_none() {
        ResponseBody::full(if include_usage {
            r.stream_all_usage.clone()
        } else {
            r.stream_all.clone()
        })
    } else {
        let (frames, end) = apply_fault(
            r.frames(include_usage),
            r.content.len(),
            fault.as_ref(),
            &r.malformed,
            |m| match api {
                Api::Ollama => ollama::error_line(m),
                Api::OpenAi => openai::error_event(m),
            },
            |n| r.oversized(n),
        );
        let (before_first, between) = if fast {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (entry.delays.before_first_chunk, entry.delays.between_chunks)
        };
        ResponseBody::paced(Plan {
            frames,
            end,
            before_first,
            between,
        })
    };
    let mut resp = response(StatusCode::OK, content_type, body.with_guard(guard));
    if api == Api::OpenAi {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Ok(resp)
}
