//! Chat answers (`/api/chat`, `/v1/chat/completions`): request probing, faults, pacing.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use serde::Deserialize;

use crate::body::{End, InjectedDrop, Plan, ResponseBody, StreamGuard, apply_fault};
use crate::render::{Api, Rendered, anthropic, ollama, openai, responses};
use crate::respond::{
    EVENT_STREAM, HandlerResult, JSON, NDJSON, api_error, fault_response, model_not_found, response,
};
use crate::script::Fault;
use crate::state::Shared;

/// The fields of a chat request the server looks at (everything else is skipped).
#[derive(Deserialize)]
struct ChatProbe<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default, borrow)]
    messages: Vec<MessageProbe<'a>>,
    /// A Responses request's `input` (a string or items).
    #[serde(default, borrow)]
    input: Option<&'a serde_json::value::RawValue>,
}

/// The type of a Responses input item.
#[derive(Deserialize)]
struct ItemProbe<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
}

/// Whether a Responses `input` ends with a tool's output.
fn ends_with_tool_output(input: Option<&serde_json::value::RawValue>) -> bool {
    input
        .and_then(|raw| serde_json::from_str::<Vec<ItemProbe<'_>>>(raw.get()).ok())
        .and_then(|items| items.into_iter().last())
        .and_then(|item| item.kind)
        .is_some_and(|kind| kind.ends_with("_call_output"))
}

/// A message's role and raw content, to tell whether the conversation ends in a tool result.
#[derive(Deserialize)]
struct MessageProbe<'a> {
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<&'a serde_json::value::RawValue>,
}

impl MessageProbe<'_> {
    fn is_tool_result(&self) -> bool {
        self.role.as_deref() == Some("tool")
            || self
                .content
                .is_some_and(|c| c.get().contains("\"tool_result\""))
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// Answers a chat request on `api`.
pub(crate) async fn chat(
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
            Api::OpenAi | Api::Responses => "you must provide a model parameter",
            Api::Anthropic => "model: Field required",
        };
        return Ok(api_error(api, StatusCode::BAD_REQUEST, msg));
    };
    let stream = probe.stream.unwrap_or(api == Api::Ollama);
    let include_usage = probe
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let after_tool_result = probe
        .messages
        .last()
        .is_some_and(MessageProbe::is_tool_result)
        || ends_with_tool_output(probe.input);
    let Some(entry) = shared.chat_entry(&model, api, after_tool_result) else {
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
        return whole_answer(api, r, fault.as_ref(), guard).await;
    }
    let content_type = match api {
        Api::Ollama => NDJSON,
        Api::OpenAi | Api::Anthropic | Api::Responses => EVENT_STREAM,
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
                Api::Anthropic => anthropic::error_event(m),
                Api::Responses => responses::error_event(m),
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
    if api != Api::Ollama {
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Ok(resp)
}

/// The non-streamed answer: the whole rendered body, or what `fault` makes of it.
async fn whole_answer(
    api: Api,
    r: &Rendered,
    fault: Option<&Fault>,
    guard: StreamGuard,
) -> HandlerResult {
    let half = |b: &Bytes| b.slice(..b.len() / 2);
    let body = match fault {
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
    Ok(response(StatusCode::OK, JSON, body.with_guard(guard)))
}
