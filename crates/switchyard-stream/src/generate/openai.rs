//! OpenAI's legacy `POST /v1/completions`: a string prompt (or a list of one), `suffix`,
//! SSE chunks with `choices[0].text`, `data: [DONE]` at the end.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{
    ApiFamily, ChatEvent, FinishReason, GenerateRequest, ProviderError, SamplingOptions, Usage,
};

use super::Completion;
use crate::RequestError;
use crate::decoder::EventDecoder;
use crate::request_error::{OneOrMany, decode_body};
use crate::sse::SseFramer;
use crate::sticky::StickyError;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    #[serde(default)]
    prompt: Option<Value>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stop: Option<OneOrMany>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<WireStreamOptions>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    best_of: Option<u32>,
    #[serde(default)]
    echo: Option<bool>,
    #[serde(default)]
    logprobs: Option<u32>,
}

#[derive(Deserialize)]
struct WireStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// What a `/v1/completions` client asked of the answer's form, beside the request itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// `stream_options.include_usage`: a streamed answer ends with a `choices: []` chunk
    /// carrying `usage` (pass the usage to [`encode_event`] only then).
    pub include_usage: bool,
}

/// Decodes a `/v1/completions` body. Only string prompts are served (one string, or a list
/// of one): token arrays and batches are refused naming `prompt`. What the gateway cannot
/// honour is refused naming the field ([`RequestError::Unsupported`]): `n` or `best_of`
/// above 1, `echo: true`, and `logprobs` as a number.
pub fn decode_request(body: &[u8]) -> Result<GenerateRequest, RequestError> {
    decode_request_with_options(body).map(|(req, _)| req)
}

/// [`decode_request`], with the [`ClientOptions`] of the answer's form
/// (`stream_options.include_usage`).
pub fn decode_request_with_options(
    body: &[u8],
) -> Result<(GenerateRequest, ClientOptions), RequestError> {
    let wire: WireRequest = decode_body(body)?;
    if wire.n.is_some_and(|n| n > 1) {
        return Err(RequestError::unsupported(
            "n",
            "only one completion per request is supported",
        ));
    }
    if wire.best_of.is_some_and(|n| n > 1) {
        return Err(RequestError::unsupported(
            "best_of",
            "choosing the best of several completions is not supported: only one completion \
             per request is generated",
        ));
    }
    if wire.echo == Some(true) {
        return Err(RequestError::unsupported(
            "echo",
            "echoing the prompt is not supported",
        ));
    }
    if wire.logprobs.is_some() {
        return Err(RequestError::unsupported(
            "logprobs",
            "log probabilities are not supported",
        ));
    }
    let options = ClientOptions {
        include_usage: wire
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    };
    let prompt = match wire.prompt {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(Value::Array(mut items)) if items.len() == 1 && items[0].is_string() => items
            .pop()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        Some(_) => {
            return Err(RequestError::unsupported(
                "prompt",
                "only a string prompt (or a list of one string) is served",
            ));
        }
    };
    let mut req = GenerateRequest {
        model: wire.model,
        prompt,
        suffix: wire.suffix.filter(|s| !s.is_empty()),
        options: SamplingOptions {
            temperature: wire.temperature,
            top_p: wire.top_p,
            max_tokens: wire.max_tokens,
            stop: wire.stop.map(OneOrMany::into_vec).unwrap_or_default(),
            seed: wire.seed,
            presence_penalty: wire.presence_penalty,
            frequency_penalty: wire.frequency_penalty,
            ..SamplingOptions::default()
        },
        stream: wire.stream.unwrap_or(false),
        ..GenerateRequest::default()
    };
    req.meta.client_api = Some(ApiFamily::OpenAi);
    Ok((req, options))
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// Whether `req` is Ollama's "load a model" call (`/api/generate` with an empty or missing
/// prompt, and no suffix or images): Ollama answers it at once with an empty `response` and
/// `done_reason: "load"`. An OpenAI-compatible upstream has no such call, and
/// `/v1/completions` with an empty prompt generates from the start token, so the provider
/// answers it itself ([`load_events`]) without a request.
pub fn is_load_request(req: &GenerateRequest) -> bool {
    req.meta.client_api == Some(ApiFamily::Ollama)
        && req.prompt.is_empty()
        && req.suffix.as_deref().is_none_or(str::is_empty)
        && req.images.is_empty()
}

/// The answer to a [load request](is_load_request): nothing generated, done with `load`.
pub fn load_events() -> Vec<ChatEvent> {
    vec![ChatEvent::done(FinishReason::Other("load".to_owned()))]
}

/// Checks that `/v1/completions` can carry what `req` asks. It has a prompt, a suffix and
/// sampling options only, so Ollama's `system`, `images` and `format` (which change what
/// the model is asked) are refused naming the field rather than dropped: the answer would
/// be to another question. An empty `system`, no images and `format: ""` ask nothing and
/// pass.
pub fn check_request(req: &GenerateRequest) -> Result<(), RequestError> {
    let refuse = |field: &str, what: &str| {
        Err(RequestError::unsupported(
            field,
            format!(
                "cannot be sent to an OpenAI-compatible upstream: it serves \
                 /api/generate through /v1/completions, which has no {what}; use /api/chat"
            ),
        ))
    };
    if req.system.as_deref().is_some_and(|s| !s.is_empty()) {
        return refuse("system", "system prompt");
    }
    if !req.images.is_empty() {
        return refuse("images", "images");
    }
    let format_asked = match &req.format {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    if format_asked {
        return refuse("format", "response format (JSON mode or schema)");
    }
    Ok(())
}

/// Encodes `req` as a streamed `/v1/completions` body for `model` (usage asked for).
/// Fields `/v1/completions` has no place for are not written: check the request first
/// ([`check_request`]).
pub fn encode_request(req: &GenerateRequest, model: &str) -> Vec<u8> {
    let o = &req.options;
    serde_json::to_vec(&OutRequest {
        model,
        prompt: &req.prompt,
        suffix: req.suffix.as_deref(),
        max_tokens: o.max_tokens,
        temperature: o.temperature,
        top_p: o.top_p,
        stop: &o.stop,
        seed: o.seed,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    #[serde(default)]
    total_tokens: u64,
}

/// Decodes a `/v1/completions` SSE stream into text, usage and done events. The finish
/// reason is held until `[DONE]` so that a usage chunk after it comes first.
#[derive(Debug, Default)]
pub struct CompletionsDecoder {
    framer: SseFramer,
    finish: Option<FinishReason>,
    done: bool,
    /// The error that stopped it; every later call returns it again.
    failed: StickyError,
}

impl CompletionsDecoder {
    fn data(&mut self, data: &str, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if data.trim() == "[DONE]" {
            let reason = self.finish.take().ok_or_else(|| {
                ProviderError::ended_early("the completions stream ended without a finish reason")
            })?;
            self.done = true;
            out.push(ChatEvent::done(reason));
            return Ok(());
        }
        let chunk: WireChunk = serde_json::from_str(data).map_err(|e| {
            ProviderError::malformed(format!("a /v1/completions chunk is not valid: {e}"))
        })?;
        if let Some(err) = chunk.error {
            let body = serde_json::json!({ "error": err }).to_string();
            return Err(switchyard_core::classify_stream_error(
                &switchyard_core::ErrorBody::parse(body.as_bytes()),
            ));
        }
        for c in chunk.choices {
            if !c.text.is_empty() {
                out.push(ChatEvent::text(c.text));
            }
            if let Some(r) = c.finish_reason {
                self.finish = Some(FinishReason::parse(&r));
            }
        }
        if let Some(u) = chunk.usage {
            out.push(ChatEvent::Usage(Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                ..Usage::default()
            }));
        }
        Ok(())
    }
}

impl EventDecoder for CompletionsDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        self.framer.push(chunk);
        while let Some(event) = self.framer.next_event() {
            let step = event
                .map_err(|e| ProviderError::malformed(e.to_string()))
                .and_then(|event| match self.done {
                    true => Ok(()),
                    false => self.data(&event.data, out),
                });
            self.failed.keep(step)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        if let Some(Ok(event)) = self.framer.finish() {
            if !self.done {
                self.data(&event.data, out)?;
            }
        }
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::ended_early(
                "the completions stream ended without [DONE]",
            ))
        }
    }
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<OutChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

/// Who the chunks are from: completion id, creation time, model.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// `cmpl-…`.
    pub id: &'a str,
    /// Unix seconds.
    pub created: u64,
    /// The model as the client named it.
    pub model: &'a str,
}

fn wire_usage(u: &Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.total_tokens(),
    }
}

fn write_chunk(
    stamp: Stamp<'_>,
    choice: Option<OutChoice<'_>>,
    usage: Option<&Usage>,
    sse: bool,
    out: &mut Vec<u8>,
) {
    if sse {
        out.extend_from_slice(b"data: ");
    }
    let chunk = OutChunk {
        id: stamp.id,
        object: "text_completion",
        created: stamp.created,
        model: stamp.model,
        choices: choice.into_iter().collect(),
        usage: usage.map(wire_usage),
    };
    let _ = serde_json::to_writer(&mut *out, &chunk);
    if sse {
        out.extend_from_slice(b"\n\n");
    }
}

/// Appends the SSE frames for one event: text as a chunk; `Done` as the finish chunk, the
/// usage chunk (with the usage seen before it; pass `None` when the client did not ask for
/// it, [`ClientOptions::include_usage`]) and `data: [DONE]`.
pub fn encode_event(event: &ChatEvent, usage: Option<&Usage>, stamp: Stamp<'_>, out: &mut Vec<u8>) {
    match event {
        ChatEvent::TextDelta { text } => {
            let choice = OutChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: None,
            };
            write_chunk(stamp, Some(choice), None, true, out);
        }
        ChatEvent::Done { finish_reason } => {
            let reason = finish_reason.openai_str();
            let choice = OutChoice {
                text: "",
                index: 0,
                logprobs: None,
                finish_reason: Some(reason),
            };
            write_chunk(stamp, Some(choice), None, true, out);
            if usage.is_some() {
                write_chunk(stamp, None, usage, true, out);
            }
            out.extend_from_slice(b"data: [DONE]\n\n");
        }
        _ => {}
    }
}

/// Appends the whole `text_completion` answer.
pub fn encode_response(answer: &Completion, stamp: Stamp<'_>, out: &mut Vec<u8>) {
    let reason = answer
        .finish
        .as_ref()
        .map_or("stop", FinishReason::openai_str);
    let choice = OutChoice {
        text: &answer.text,
        index: 0,
        logprobs: None,
        finish_reason: Some(reason),
    };
    let usage = answer.usage.unwrap_or_default();
    write_chunk(stamp, Some(choice), Some(&usage), false, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_fields_are_refused_by_name_and_defaults_pass() {
        for (body, field) in [
            (r#"{"model":"m","prompt":"hi","n":2}"#, "n"),
            (r#"{"model":"m","prompt":"hi","best_of":3}"#, "best_of"),
            (r#"{"model":"m","prompt":"hi","echo":true}"#, "echo"),
            (r#"{"model":"m","prompt":"hi","logprobs":0}"#, "logprobs"),
        ] {
            let e = decode_request(body.as_bytes()).unwrap_err();
            assert_eq!(e.path(), Some(field), "{body}: {e}");
        }
        let body = r#"{"model":"m","prompt":"hi","n":1,"best_of":1,"echo":false,"logprobs":null}"#;
        let (req, options) = decode_request_with_options(body.as_bytes()).unwrap();
        assert_eq!(req.prompt, "hi");
        assert!(!options.include_usage);
    }

    fn ollama(body: &str) -> GenerateRequest {
        super::super::ollama::decode_request(body.as_bytes()).unwrap()
    }

    #[test]
    fn system_images_and_format_are_refused_by_name() {
        for (body, field) in [
            (
                r#"{"model":"m","prompt":"hi","system":"be brief"}"#,
                "system",
            ),
            (r#"{"model":"m","prompt":"hi","images":["aGk="]}"#, "images"),
            (r#"{"model":"m","prompt":"hi","format":"json"}"#, "format"),
            (
                r#"{"model":"m","prompt":"hi","format":{"type":"object"}}"#,
                "format",
            ),
        ] {
            let e = check_request(&ollama(body)).unwrap_err();
            assert_eq!(e.path(), Some(field), "{body}: {e}");
            let text = e.to_string();
            assert!(
                text.contains("/v1/completions") && text.contains("/api/chat"),
                "{text}"
            );
        }
    }

    #[test]
    fn empty_system_images_and_format_pass() {
        let body = r#"{"model":"m","prompt":"hi","system":"","images":null,"format":""}"#;
        assert!(check_request(&ollama(body)).is_ok());
        let body = r#"{"model":"m","prompt":"hi","images":[],"format":null}"#;
        assert!(check_request(&ollama(body)).is_ok());
        assert!(check_request(&decode_request(br#"{"model":"m","prompt":"hi"}"#).unwrap()).is_ok());
    }

    #[test]
    fn an_empty_ollama_prompt_is_a_load_request() {
        assert!(is_load_request(&ollama(r#"{"model":"m"}"#)));
        assert!(is_load_request(&ollama(r#"{"model":"m","prompt":""}"#)));
        assert!(is_load_request(&ollama(r#"{"model":"m","prompt":null}"#)));
        assert!(!is_load_request(&ollama(r#"{"model":"m","prompt":"hi"}"#)));
        assert!(!is_load_request(&ollama(
            r#"{"model":"m","prompt":"","suffix":"}"}"#
        )));
        assert!(!is_load_request(&ollama(
            r#"{"model":"m","prompt":"","images":["aGk="]}"#
        )));
        // A /v1/completions client's empty prompt is its own business.
        assert!(!is_load_request(
            &decode_request(br#"{"model":"m","prompt":""}"#).unwrap()
        ));
        assert_eq!(
            load_events(),
            vec![ChatEvent::done(FinishReason::Other("load".to_owned()))]
        );
    }

    #[test]
    fn finish_reasons_are_the_ones_openai_clients_know() {
        let stamp = Stamp {
            id: "cmpl-1",
            created: 1,
            model: "m",
        };
        let reasons = |out: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(out)
                .split("\n\n")
                .filter_map(|f| f.trim_start_matches("data: ").parse::<Value>().ok())
                .filter_map(|v| v["choices"][0]["finish_reason"].as_str().map(str::to_owned))
                .collect()
        };
        for (finish, expected) in [
            (FinishReason::Other("load".to_owned()), "stop"),
            (FinishReason::Other("unload".to_owned()), "stop"),
            (FinishReason::Length, "length"),
            (FinishReason::Stop, "stop"),
        ] {
            let mut out = Vec::new();
            encode_event(&ChatEvent::done(finish.clone()), None, stamp, &mut out);
            assert_eq!(reasons(&out), [expected], "{finish:?} streamed");
            let answer = Completion {
                finish: Some(finish.clone()),
                ..Completion::default()
            };
            let mut out = Vec::new();
            encode_response(&answer, stamp, &mut out);
            assert_eq!(reasons(&out), [expected], "{finish:?} whole");
        }
    }

    #[test]
    fn include_usage_is_read_from_stream_options() {
        let body =
            r#"{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}"#;
        let (_, options) = decode_request_with_options(body.as_bytes()).unwrap();
        assert!(options.include_usage);
        let body = r#"{"model":"m","prompt":"hi","stream":true,"stream_options":null}"#;
        let (_, options) = decode_request_with_options(body.as_bytes()).unwrap();
        assert!(!options.include_usage);
    }
}
