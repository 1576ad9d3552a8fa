//! Text completion: Ollama's `POST /api/generate` with a prompt (NDJSON or one object) and
//! OpenAI's `POST /v1/completions` (SSE or one object). The answer is [`completion_for`]
//! the prompt and suffix, in three chunks when streamed.

use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::body::ResponseBody;
use crate::render::Api;
use crate::respond::{EVENT_STREAM, NDJSON, Resp, api_error, json, model_not_found, response};
use crate::state::Shared;
use crate::time::{rfc3339_now, unix_now};

/// What the test upstream completes: `Hello from the test upstream.` for a plain prompt;
/// with a suffix, `<fim:PROMPT|SUFFIX>` so tests see both reached the model.
pub fn completion_for(prompt: &str, suffix: Option<&str>) -> String {
    match suffix {
        Some(s) if !s.is_empty() => format!("<fim:{prompt}|{s}>"),
        _ => "Hello from the test upstream.".to_owned(),
    }
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
}

/// Answers a completion request of `api`.
pub(crate) fn answer(shared: &Shared, api: Api, body: &Bytes) -> Resp {
    let probe: Probe = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return api_error(api, StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    if shared.catalog().find(&probe.model).is_none() {
        return model_not_found(api, &probe.model);
    }
    let text = completion_for(&probe.prompt, probe.suffix.as_deref());
    let third = text.len() / 3;
    let cut = |i: usize| {
        (0..=i)
            .rev()
            .find(|&c| text.is_char_boundary(c))
            .unwrap_or(0)
    };
    let (a, b) = (cut(third), cut(2 * third));
    let parts = [&text[..a], &text[a..b], &text[b..]];
    let words = probe.prompt.split_whitespace().count();
    let streamed = probe.stream.unwrap_or(api == Api::Ollama);
    let (model, now) = (probe.model.as_str(), rfc3339_now());
    let mut out = String::new();
    match (api, streamed) {
        (Api::Ollama, true) => {
            for p in parts {
                out.push_str(&json!({"model": model, "created_at": now, "response": p, "done": false}).to_string());
                out.push('\n');
            }
            out.push_str(&json!({"model": model, "created_at": now, "response": "", "done": true,
                "done_reason": "stop", "context": [1, 2, 3], "prompt_eval_count": words, "eval_count": 3}).to_string());
            out.push('\n');
            response(StatusCode::OK, NDJSON, ResponseBody::full(Bytes::from(out)))
        }
        (Api::Ollama, false) => json(StatusCode::OK, Bytes::from(json!({"model": model, "created_at": now,
            "response": text, "done": true, "done_reason": "stop", "prompt_eval_count": words, "eval_count": 3}).to_string())),
        (Api::OpenAi, true) => {
            let chunk = |text: &str, finish: Option<&str>| json!({"id": "cmpl-t", "object": "text_completion",
                "created": unix_now(), "model": model, "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]});
            for p in parts {
                out.push_str(&format!("data: {}\n\n", chunk(p, None)));
            }
            out.push_str(&format!("data: {}\n\n", chunk("", Some("stop"))));
            out.push_str(&format!("data: {}\n\n", json!({"id": "cmpl-t", "object": "text_completion", "created": unix_now(),
                "model": model, "choices": [], "usage": {"prompt_tokens": words, "completion_tokens": 3, "total_tokens": words + 3}})));
            out.push_str("data: [DONE]\n\n");
            response(StatusCode::OK, EVENT_STREAM, ResponseBody::full(Bytes::from(out)))
        }
        (Api::OpenAi, false) => json(StatusCode::OK, Bytes::from(json!({"id": "cmpl-t", "object": "text_completion",
            "created": unix_now(), "model": model, "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": words, "completion_tokens": 3, "total_tokens": words + 3}}).to_string())),
        // Anthropic has no text-completion endpoint; the router never sends one there.
        (Api::Anthropic | Api::Responses, _) => api_error(api, StatusCode::NOT_FOUND, "no completions endpoint"),
    }
}
