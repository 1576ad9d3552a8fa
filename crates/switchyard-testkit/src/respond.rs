//! Response building: content types, bodies, and errors in each API's own shape.

use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::body::{InjectedDrop, ResponseBody};
use crate::render::{Api, anthropic, ollama, openai};
use crate::script::Fault;

pub(crate) type Resp = Response<ResponseBody>;

/// What the service answers: a response, or [`InjectedDrop`] to close the connection
/// without one.
pub(crate) type HandlerResult = Result<Resp, InjectedDrop>;

pub(crate) const JSON: &str = "application/json; charset=utf-8";
pub(crate) const NDJSON: &str = "application/x-ndjson";
pub(crate) const EVENT_STREAM: &str = "text/event-stream";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

pub(crate) const NGINX_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";

pub(crate) fn response(status: StatusCode, content_type: &'static str, body: ResponseBody) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    response(status, JSON, ResponseBody::full(body))
}

pub(crate) fn ollama_error(status: StatusCode, message: &str) -> Resp {
    json(status, ollama::error_body(message))
}

pub(crate) fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> Resp {
    json(status, openai::error_body(message, kind, code))
}

/// An error in the API's own shape, with OpenAI's `type`/`code` derived from the status
/// (and, for 400 and 429, from the message: "context length" gives
/// `context_length_exceeded`, "quota" gives `insufficient_quota`).
pub(crate) fn api_error(api: Api, status: StatusCode, message: &str) -> Resp {
    match api {
        Api::Ollama => ollama_error(status, message),
        Api::Anthropic => json(status, anthropic::error_body(status.as_u16(), message)),
        Api::OpenAi | Api::Responses => {
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

pub(crate) fn not_found_page(api: Api, method: &Method, path: &str) -> Resp {
    match api {
        Api::Ollama => response(
            StatusCode::NOT_FOUND,
            TEXT,
            ResponseBody::full(Bytes::from_static(b"404 page not found")),
        ),
        Api::Anthropic => api_error(api, StatusCode::NOT_FOUND, &format!("Not found: {path}")),
        Api::OpenAi | Api::Responses => openai_error(
            StatusCode::NOT_FOUND,
            &format!("Invalid URL ({method} {path})"),
            "invalid_request_error",
            None,
        ),
    }
}

pub(crate) fn model_not_found(api: Api, model: &str) -> Resp {
    match api {
        Api::Ollama => ollama_error(
            StatusCode::NOT_FOUND,
            &format!("model \"{model}\" not found, try pulling it first"),
        ),
        Api::Anthropic => api_error(api, StatusCode::NOT_FOUND, &format!("model: {model}")),
        Api::OpenAi | Api::Responses => openai_error(
            StatusCode::NOT_FOUND,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
    }
}

pub(crate) fn unauthorized(api: Api) -> Resp {
    match api {
        Api::Ollama => ollama_error(StatusCode::UNAUTHORIZED, "unauthorized"),
        Api::Anthropic => api_error(api, StatusCode::UNAUTHORIZED, "invalid x-api-key"),
        Api::OpenAi | Api::Responses => openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
    }
}

pub(crate) fn rate_limited(api: Api, retry_after_secs: u64) -> Resp {
    let mut r = match api {
        Api::Ollama => ollama_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("rate limit exceeded, retry after {retry_after_secs} seconds"),
        ),
        Api::Anthropic => api_error(
            api,
            StatusCode::TOO_MANY_REQUESTS,
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        Api::OpenAi | Api::Responses => {
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
pub(crate) fn fault_response(api: Api, fault: &Fault) -> Resp {
    match fault {
        Fault::HttpError { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            api_error(api, status, message)
        }
        Fault::RateLimited { retry_after_secs } => rate_limited(api, *retry_after_secs),
        _ => unauthorized(api),
    }
}
