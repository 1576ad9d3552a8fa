//! Encoding [`ChatEvent`]s as OpenAI chat-completion SSE chunks, whole answers as a
//! `chat.completion` object, and errors as OpenAI's `{"error":{...}}`.

use std::io::Write as _;

use serde::Serialize;
use switchyard_core::{ChatEvent, ChatResponse, ErrorKind, MAX_TOOL_CALLS, ProviderError, Usage};

use crate::json_util::{is_empty_delta, write_json, write_json_str};

/// Encodes a stream of [`ChatEvent`]s as OpenAI `chat.completion.chunk` SSE frames.
///
/// The first frame's delta carries `"role":"assistant"`. Text goes to `delta.content`,
/// thinking to both `delta.reasoning_content` and `delta.reasoning`, tool calls stream as `delta.tool_calls`
/// (the first delta of a call has `id`, `type`, `function.name`; later ones only
/// argument fragments). `Done` writes the finish frame (`finish_reason` is `tool_calls`
/// whenever calls were made, `length` for an answer cut for lack of room, Anthropic's
/// `model_context_window_exceeded` included: [`switchyard_core::FinishReason::openai_str`]), then the usage
/// frame when asked for, then `data: [DONE]`.
/// After `Done`, or after an error frame, the encoder writes nothing more.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::openai::OpenAiStreamEncoder;
///
/// let mut enc = OpenAiStreamEncoder::new("gpt-4.1-mini", "chatcmpl-1", 1_700_000_000, false);
/// let mut out = Vec::new();
/// enc.encode(&ChatEvent::text("Hi"), &mut out);
/// enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with(r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4.1-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#));
/// assert!(text.ends_with("data: [DONE]\n\n"));
/// ```
#[derive(Debug)]
pub struct OpenAiStreamEncoder {
    /// `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,"choices":[`
    prefix: Vec<u8>,
    include_usage: bool,
    role_sent: bool,
    /// Indices of the calls started so far (bounded by [`MAX_TOOL_CALLS`]).
    started: Vec<u32>,
    usage: Option<Usage>,
    done: bool,
}

const CHOICE_HEAD: &[u8] = b"{\"index\":0,\"delta\":";
const OPEN_TAIL: &[u8] = b",\"finish_reason\":null}]}\n\n";
/// The first delta of a text frame.
const ROLE_HEAD: &[u8] = b"{\"role\":\"assistant\",";
/// The first delta of any other frame (content present, empty).
const ROLE_HEAD_EMPTY: &[u8] = b"{\"role\":\"assistant\",\"content\":\"\",";

impl OpenAiStreamEncoder {
    /// An encoder for an answer from `model`, with the completion id (`chatcmpl-…`) and
    /// creation time every chunk repeats; `include_usage` adds the usage frame at the end
    /// (the client's `stream_options.include_usage`).
    pub fn new(
        model: impl Into<String>,
        completion_id: impl Into<String>,
        created_unix: u64,
        include_usage: bool,
    ) -> Self {
        let model = model.into();
        let id = completion_id.into();
        let mut prefix = Vec::with_capacity(96 + model.len() + id.len());
        prefix.extend_from_slice(b"data: {\"id\":");
        write_json(&mut prefix, &id);
        prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        let _ = write!(prefix, "{created_unix}");
        prefix.extend_from_slice(b",\"model\":");
        write_json(&mut prefix, &model);
        prefix.extend_from_slice(b",\"choices\":[");
        Self {
            prefix,
            include_usage,
            role_sent: false,
            started: Vec::new(),
            usage: None,
            done: false,
        }
    }

    /// Appends the frames for one event to `out` (zero or more complete frames).
    pub fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        if self.done || is_empty_delta(event) {
            return;
        }
        match event {
            ChatEvent::TextDelta { text } => {
                self.open_delta(out, true);
                out.extend_from_slice(b"\"content\":");
                write_json_str(out, text);
                self.close_delta(out);
            }
            ChatEvent::ThinkingDelta { text } => {
                self.open_delta(out, false);
                // Both spellings: DeepSeek-style clients (Vercel AI SDK, OpenCode) read
                // `reasoning_content`, newer ones (vLLM, Ollama's /v1) `reasoning`.
                out.extend_from_slice(b"\"reasoning_content\":");
                write_json_str(out, text);
                out.extend_from_slice(b",\"reasoning\":");
                write_json_str(out, text);
                self.close_delta(out);
            }
            ChatEvent::ToolCallStart { index, id, name } => {
                if self.started.contains(index) {
                    self.fail(&format!("tool call index {index} started twice"), out);
                    return;
                }
                if self.started.len() >= MAX_TOOL_CALLS {
                    let msg = format!("more than {MAX_TOOL_CALLS} tool calls in one answer");
                    self.fail(&msg, out);
                    return;
                }
                self.started.push(*index);
                self.open_delta(out, false);
                let _ = write!(out, "\"tool_calls\":[{{\"index\":{index},\"id\":");
                write_json_str(out, id);
                out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                write_json_str(out, name);
                out.extend_from_slice(b",\"arguments\":\"\"}}]");
                self.close_delta(out);
            }
            ChatEvent::ToolCallArgs { index, fragment } => {
                if !self.started.contains(index) {
                    let msg = format!("tool call index {index} continued before it started");
                    self.fail(&msg, out);
                    return;
                }
                if fragment.is_empty() {
                    return;
                }
                self.open_delta(out, false);
                let _ = write!(
                    out,
                    "\"tool_calls\":[{{\"index\":{index},\"function\":{{\"arguments\":"
                );
                write_json_str(out, fragment);
                out.extend_from_slice(b"}}]");
                self.close_delta(out);
            }
            ChatEvent::ToolCallEnd { index } => {
                if !self.started.contains(index) {
                    let msg = format!("tool call index {index} ended before it started");
                    self.fail(&msg, out);
                }
            }
            ChatEvent::Usage(usage) => self.usage = Some(*usage),
            // OpenAI has no place for Anthropic's signatures and redacted thinking.
            ChatEvent::ThinkingSignature { .. }
            | ChatEvent::RedactedThinking { .. }
            | ChatEvent::Opaque { .. } => {}
            ChatEvent::Done { finish_reason } => {
                if !self.role_sent {
                    // An empty answer still opens with the assistant's role.
                    out.extend_from_slice(&self.prefix);
                    out.extend_from_slice(CHOICE_HEAD);
                    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"");
                    self.close_delta(out);
                    self.role_sent = true;
                }
                let reason = finish_reason
                    .answering_calls(!self.started.is_empty())
                    .openai_str();
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(CHOICE_HEAD);
                out.extend_from_slice(b"{},\"finish_reason\":");
                write_json(out, reason);
                out.extend_from_slice(b"}]}\n\n");
                if self.include_usage {
                    let u = self.usage.unwrap_or_default();
                    out.extend_from_slice(&self.prefix);
                    out.extend_from_slice(b"],\"usage\":");
                    write_usage(out, &u);
                    out.extend_from_slice(b"}\n\n");
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.done = true;
            }
        }
    }

    /// Appends an error frame `data: {"error":{...}}` and ends the stream without
    /// `[DONE]`: the official SDKs raise on it, so an interrupted answer never looks
    /// complete.
    pub fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        out.extend_from_slice(b"data: ");
        encode_error_body(err, out);
        out.extend_from_slice(b"\n\n");
        self.done = true;
    }

    /// Whether the final frames (or an error frame) have been written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Writes the frame head and the delta's opening brace (with the role on the first
    /// frame, plus an empty `content` unless the frame is text); the caller then writes
    /// one `"key":value` member.
    fn open_delta(&mut self, out: &mut Vec<u8>, text: bool) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(CHOICE_HEAD);
        if self.role_sent {
            out.push(b'{');
        } else {
            out.extend_from_slice(if text { ROLE_HEAD } else { ROLE_HEAD_EMPTY });
            self.role_sent = true;
        }
    }

    fn close_delta(&self, out: &mut Vec<u8>) {
        out.push(b'}');
        out.extend_from_slice(OPEN_TAIL);
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: ");
        write_json(
            out,
            &ErrorEnvelope {
                error: ErrorObject {
                    message,
                    kind: "server_error",
                    param: None,
                    code: ErrorKind::MalformedStream.reason_code(),
                },
            },
        );
        out.extend_from_slice(b"\n\n");
        self.done = true;
    }
}

/// Appends a non-streamed `chat.completion` object for a whole response, with usage
/// (zeros when the upstream reported none). Written field by field: the bytes serde_json
/// writes for the same object (a test compares the two), without a serializer per field.
pub fn encode_response(
    resp: &ChatResponse,
    model: &str,
    completion_id: &str,
    created_unix: u64,
    out: &mut Vec<u8>,
) {
    let has_calls = !resp.tool_calls.is_empty();
    out.extend_from_slice(b"{\"id\":");
    write_json_str(out, completion_id);
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    out.extend_from_slice(itoa::Buffer::new().format(created_unix).as_bytes());
    out.extend_from_slice(b",\"model\":");
    write_json_str(out, model);
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    if resp.content.is_empty() && has_calls {
        out.extend_from_slice(b"null");
    } else {
        write_json_str(out, &resp.content);
    }
    if let Some(thinking) = resp.thinking.as_deref() {
        out.extend_from_slice(b",\"reasoning_content\":");
        write_json_str(out, thinking);
        out.extend_from_slice(b",\"reasoning\":");
        write_json_str(out, thinking);
    }
    if has_calls {
        out.extend_from_slice(b",\"tool_calls\":[");
        for (i, call) in resp.tool_calls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            write_json_str(out, &call.id);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            write_json_str(out, &call.name);
            out.extend_from_slice(b",\"arguments\":");
            // As the model wrote them when known (`raw_arguments`): re-serialising the
            // map would rewrite numbers a `Value` cannot hold exactly.
            write_json_str(out, &call.arguments_json());
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    let finish_reason = resp.finish_reason.answering_calls(has_calls).openai_str();
    out.extend_from_slice(b"},\"finish_reason\":");
    write_json_str(out, finish_reason);
    out.extend_from_slice(b"}],\"usage\":");
    write_usage(out, &resp.usage.unwrap_or_default());
    out.push(b'}');
}

/// Appends OpenAI's usage object: `prompt_tokens` counts every prompt token, cached ones
/// included (an Anthropic upstream counts those apart), and `prompt_tokens_details`
/// names the ones read from a prompt cache when there are any.
fn write_usage(out: &mut Vec<u8>, usage: &Usage) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"{\"prompt_tokens\":");
    out.extend_from_slice(number.format(usage.all_prompt_tokens()).as_bytes());
    out.extend_from_slice(b",\"completion_tokens\":");
    out.extend_from_slice(number.format(usage.completion_tokens).as_bytes());
    out.extend_from_slice(b",\"total_tokens\":");
    out.extend_from_slice(number.format(usage.all_tokens()).as_bytes());
    if usage.cache_read_tokens > 0 {
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        out.extend_from_slice(number.format(usage.cache_read_tokens).as_bytes());
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends OpenAI's error body `{"error":{"message","type","param":null,"code"}}`, with
/// Switchyard's reason code as `code` (for an HTTP error answer; the status is the
/// caller's business).
pub fn encode_error_body(err: &ProviderError, out: &mut Vec<u8>) {
    let message = if err.message().is_empty() {
        err.reason_code()
    } else {
        err.message()
    };
    write_json(
        out,
        &ErrorEnvelope {
            error: ErrorObject {
                message,
                kind: error_type(err.kind()),
                param: None,
                code: error_code(err),
            },
        },
    );
}

/// The `error.code` of an OpenAI error object: OpenAI's own code where it has one for the
/// failure (clients act on it: Codex treats a 503 as an overload only for
/// `server_is_overloaded`, and stops retrying on `insufficient_quota`), else the gateway's
/// stable reason code.
pub fn error_code(err: &ProviderError) -> &'static str {
    match err.kind() {
        ErrorKind::Overloaded => "server_is_overloaded",
        ErrorKind::ContextOverflow => "context_length_exceeded",
        ErrorKind::RateLimited => "rate_limit_exceeded",
        ErrorKind::QuotaExhausted => "insufficient_quota",
        _ => err.reason_code(),
    }
}

/// OpenAI's `error.type` for a kind of failure.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::ContextOverflow
        | ErrorKind::ModelNotFound
        | ErrorKind::EndpointNotFound
        | ErrorKind::PolicyBlocked => "invalid_request_error",
        ErrorKind::Auth => "authentication_error",
        ErrorKind::RateLimited | ErrorKind::QueueFull => "rate_limit_error",
        ErrorKind::QuotaExhausted | ErrorKind::BudgetExhausted => "insufficient_quota",
        _ => "server_error",
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

#[cfg(test)]
mod whole_answer_tests {
    //! The direct `chat.completion` writer against the serde structs it replaced.

    use proptest::prelude::*;
    use serde::Serialize;
    use switchyard_core::{ChatResponse, FinishReason, ToolCall, Usage};

    use super::encode_response;

    #[derive(Serialize)]
    struct WholeFunction<'a> {
        name: &'a str,
        arguments: String,
    }

    #[derive(Serialize)]
    struct WholeCall<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        function: WholeFunction<'a>,
    }

    #[derive(Serialize)]
    struct WholeMessage<'a> {
        role: &'static str,
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reasoning_content: Option<&'a str>,
        /// The same text under the newer spelling.
        #[serde(skip_serializing_if = "Option::is_none")]
        reasoning: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WholeCall<'a>>,
    }

    #[derive(Serialize)]
    struct WholeChoice<'a> {
        index: u32,
        message: WholeMessage<'a>,
        finish_reason: &'a str,
    }

    #[derive(Serialize)]
    struct WireUsage {
        prompt_tokens: u32,
        completion_tokens: u32,
        total_tokens: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        prompt_tokens_details: Option<Cached>,
    }

    #[derive(Serialize)]
    struct Cached {
        cached_tokens: u32,
    }

    #[derive(Serialize)]
    struct Completion<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        model: &'a str,
        choices: [WholeChoice<'a>; 1],
        usage: WireUsage,
    }

    /// The bytes serde_json writes for `resp` (the writer before this one).
    fn reference(resp: &ChatResponse, model: &str, id: &str, created: u64) -> Vec<u8> {
        let tool_calls: Vec<WholeCall<'_>> = resp
            .tool_calls
            .iter()
            .map(|c| WholeCall {
                id: &c.id,
                kind: "function",
                function: WholeFunction {
                    name: &c.name,
                    arguments: serde_json::to_string(&c.arguments).unwrap(),
                },
            })
            .collect();
        let content = if resp.content.is_empty() && !tool_calls.is_empty() {
            None
        } else {
            Some(resp.content.as_str())
        };
        let finish_reason = resp
            .finish_reason
            .answering_calls(!tool_calls.is_empty())
            .openai_str();
        let usage = resp.usage.unwrap_or_default();
        serde_json::to_vec(&Completion {
            id,
            object: "chat.completion",
            created,
            model,
            choices: [WholeChoice {
                index: 0,
                message: WholeMessage {
                    role: "assistant",
                    content,
                    reasoning_content: resp.thinking.as_deref(),
                    reasoning: resp.thinking.as_deref(),
                    tool_calls,
                },
                finish_reason,
            }],
            usage: WireUsage {
                prompt_tokens: usage.all_prompt_tokens(),
                completion_tokens: usage.completion_tokens,
                total_tokens: usage.all_tokens(),
                prompt_tokens_details: (usage.cache_read_tokens > 0).then_some(Cached {
                    cached_tokens: usage.cache_read_tokens,
                }),
            },
        })
        .unwrap()
    }

    fn finish_reason() -> impl Strategy<Value = FinishReason> {
        prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::Length),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::ContentFilter),
            any::<String>().prop_map(FinishReason::StopSequence),
            "[a-z\"\\\\]{0,8}".prop_map(FinishReason::Other),
        ]
    }

    fn tool_call() -> impl Strategy<Value = ToolCall> {
        (
            any::<String>(),
            any::<String>(),
            proptest::collection::vec((any::<String>(), any::<String>()), 0..3),
        )
            .prop_map(|(id, name, args)| ToolCall {
                id,
                name,
                arguments: args
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect(),
                raw_arguments: None,
            })
    }

    proptest! {
        #[test]
        fn writes_what_serde_wrote(
            content in prop_oneof![Just(String::new()), any::<String>(), "[ -~\n\t\u{7f}\u{e9}\u{2028}]{0,40}"],
            thinking in proptest::option::of(any::<String>()),
            tool_calls in proptest::collection::vec(tool_call(), 0..3),
            finish in finish_reason(),
            usage in proptest::option::of((any::<u32>(), any::<u32>())),
            model in any::<String>(),
            id in any::<String>(),
            created in any::<u64>(),
        ) {
            let resp = ChatResponse {
                content,
                thinking,
                tool_calls,
                finish_reason: finish,
                usage: usage.map(|(p, c)| Usage { prompt_tokens: p, completion_tokens: c, ..Usage::default() }),
                extras: Default::default(),
            };
            let mut out = Vec::new();
            encode_response(&resp, &model, &id, created, &mut out);
            prop_assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(reference(&resp, &model, &id, created)).unwrap()
            );
        }
    }
}

#[cfg(test)]
mod finish_reason_tests {
    use switchyard_core::{ChatEvent, FinishReason};

    use super::OpenAiStreamEncoder;

    #[test]
    fn a_context_window_cut_reads_as_length() {
        let mut enc = OpenAiStreamEncoder::new("m", "chatcmpl-1", 1, false);
        let mut out = Vec::new();
        enc.encode(&ChatEvent::text("Partial"), &mut out);
        let cut = FinishReason::Other(FinishReason::CONTEXT_WINDOW_EXCEEDED.into());
        enc.encode(&ChatEvent::done(cut), &mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(text.contains(r#""finish_reason":"length""#), "{text}");
    }
}
