//! What a model answers (`Script`, `Reply`), how slowly (`Delays`) and how it breaks (`Fault`).

use std::time::Duration;

/// The scripted behaviour of one model: its reply, its pacing, an optional fault and the
/// token counts it reports.
///
/// Scripts render once into wire bytes (per API and mode) and are then replayed for every
/// request, so ids (`chatcmpl-…`, `call_…`) and timestamps are the same for every request
/// served from the same script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// What the model answers.
    pub reply: Reply,
    /// Pauses before headers, before the first chunk and between chunks.
    pub delays: Delays,
    /// A fault injected into every answer of this model (a server-wide fault set with
    /// [`TestUpstream::set_fault`](crate::TestUpstream::set_fault) takes precedence).
    pub fault: Option<Fault>,
    /// `(prompt_tokens, completion_tokens)` reported in Ollama's final line and OpenAI's usage.
    pub usage: (u32, u32),
    /// Overrides the finish reason. Default: `stop`, or `tool_calls` on the OpenAI side when
    /// the reply has tool calls (Ollama's `done_reason` is then still `stop`, as Ollama does).
    pub finish_reason: Option<String>,
}

impl Default for Script {
    fn default() -> Self {
        Script::text(["Hello", " from", " the", " test", " upstream."])
    }
}

impl Script {
    /// A script with the given reply and no delays, no fault, usage `(12, 5)`.
    pub fn new(reply: Reply) -> Self {
        Script {
            reply,
            delays: Delays::default(),
            fault: None,
            usage: (12, 5),
            finish_reason: None,
        }
    }

    /// A plain text reply streamed as the given chunks.
    pub fn text<I, S>(chunks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Script::new(Reply::Text(collect(chunks)))
    }

    /// Reasoning chunks (`message.thinking` / `delta.reasoning_content`) then text chunks.
    pub fn thinking_then_text<I, S, J, T>(thinking: I, text: J) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
        J: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Script::new(Reply::ThinkingThenText {
            thinking: collect(thinking),
            text: collect(text),
        })
    }

    /// Native tool calls (two or more interleave on the OpenAI side).
    pub fn tool_calls(calls: Vec<ScriptedCall>) -> Self {
        Script::new(Reply::ToolCalls(calls))
    }

    /// Native tool calls sent one after the other (no interleaving on the OpenAI side).
    pub fn tool_calls_sequential(calls: Vec<ScriptedCall>) -> Self {
        Script::new(Reply::ToolCallsSequential(calls))
    }

    /// Some text chunks, then native tool calls.
    pub fn text_then_tool_calls<I, S>(text: I, calls: Vec<ScriptedCall>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Script::new(Reply::TextThenToolCalls {
            text: collect(text),
            calls,
        })
    }

    /// An Anthropic answer given verbatim: `events` are the stream's SSE frames (each a whole
    /// `event: …\ndata: …\n\n`, `message_start` to `message_stop`) and `message` the
    /// non-streamed body, for payloads the renderer does not write (citations, server
    /// tools). Other APIs answer it with empty text.
    pub fn anthropic_raw<I, S>(events: I, message: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Script::new(Reply::AnthropicRaw {
            events: collect(events),
            message: message.into(),
        })
    }

    /// Tool calls written as plain text content, in the given model family's format.
    pub fn tool_calls_as_text(format: TextCallFormat, calls: Vec<ScriptedCall>) -> Self {
        Script::new(Reply::ToolCallsAsText { format, calls })
    }

    /// A text reply of `chunks` chunks (`"tok0 "`, `"tok1 "`, …) with `between` before each
    /// one: a slow stream that keeps producing (for first-token versus idle timeouts).
    pub fn slow_stream(chunks: usize, between: Duration) -> Self {
        Script::text((0..chunks).map(|i| format!("tok{i} "))).with_delays(Delays {
            before_headers: Duration::ZERO,
            before_first_chunk: between,
            between_chunks: between,
        })
    }

    /// Sets the delays.
    #[must_use]
    pub fn with_delays(mut self, delays: Delays) -> Self {
        self.delays = delays;
        self
    }

    /// Sets the pause between chunks (a convenience over [`Script::with_delays`]).
    #[must_use]
    pub fn with_chunk_delay(mut self, between_chunks: Duration) -> Self {
        self.delays.between_chunks = between_chunks;
        self
    }

    /// Sets the fault.
    #[must_use]
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Sets the reported `(prompt_tokens, completion_tokens)`.
    #[must_use]
    pub fn with_usage(mut self, prompt: u32, completion: u32) -> Self {
        self.usage = (prompt, completion);
        self
    }

    /// Overrides the finish reason (e.g. `"length"`).
    #[must_use]
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }
}

fn collect<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

/// The content of a scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Text streamed as these chunks, one chunk per wire line/event.
    Text(Vec<String>),
    /// Reasoning chunks first (Ollama `message.thinking`, OpenAI `delta.reasoning_content`),
    /// then text chunks.
    ThinkingThenText {
        /// Reasoning chunks.
        thinking: Vec<String>,
        /// Answer chunks.
        text: Vec<String>,
    },
    /// Native tool calls. Ollama: each call whole in its own chunk with `id` and
    /// `function.index`. OpenAI: per call a first delta with `id`, `type`, `function.name`
    /// and `arguments: ""`, then the arguments JSON split into at least three fragments;
    /// with two or more calls the deltas of the calls interleave (round robin).
    ToolCalls(Vec<ScriptedCall>),
    /// Like [`Reply::ToolCalls`] but on the OpenAI side each call is finished before the
    /// next one starts.
    ToolCallsSequential(Vec<ScriptedCall>),
    /// Some text chunks, then native tool calls (interleaved as in [`Reply::ToolCalls`]).
    TextThenToolCalls {
        /// Text chunks sent before the calls.
        text: Vec<String>,
        /// The calls.
        calls: Vec<ScriptedCall>,
    },
    /// Tool calls written as text content (the "tool JSON as text" failure), split into
    /// small chunks so that tags and JSON straddle chunk boundaries.
    ToolCallsAsText {
        /// Which model family's text format.
        format: TextCallFormat,
        /// The calls to write.
        calls: Vec<ScriptedCall>,
    },
    /// Anthropic only, verbatim (see [`Script::anthropic_raw`]).
    AnthropicRaw {
        /// The SSE frames of the streamed answer, in order.
        events: Vec<String>,
        /// The non-streamed body.
        message: String,
    },
}

/// One scripted tool call: a function name and its arguments (a JSON object).
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedCall {
    /// Function name.
    pub name: String,
    /// Arguments, normally a JSON object.
    pub arguments: serde_json::Value,
}

impl ScriptedCall {
    /// A call of `name` with `arguments`.
    pub fn new(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        ScriptedCall {
            name: name.into(),
            arguments,
        }
    }
}

/// The text shapes in which models write tool calls (see docs/WIRE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCallFormat {
    /// Hermes / Qwen: `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>` per call.
    Hermes,
    /// Llama 3.x: `<|python_tag|>{"name": …, "parameters": {…}}`, several joined by `; `.
    LlamaPythonTag,
    /// Older Mistral: `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]`.
    MistralList,
    /// A fenced block: ```` ```json\n{"name": …, "arguments": {…}}\n``` ```` per call.
    FencedJson,
    /// The bare object `{"name": …, "parameters": {…}}` (one call).
    BareJson,
}

/// Pauses, all skipped in fast mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delays {
    /// Before the response status and headers are sent.
    pub before_headers: Duration,
    /// After the headers, before the first chunk of a streamed body.
    pub before_first_chunk: Duration,
    /// Between two chunks of a streamed body.
    pub between_chunks: Duration,
}

/// A fault to inject.
///
/// Set per model on a [`Script`] or server-wide with
/// [`TestUpstream::set_fault`](crate::TestUpstream::set_fault). Server-wide, the
/// connection-level and HTTP-level faults ([`Fault::Refuse`], [`Fault::AcceptAndHang`],
/// [`Fault::HttpError`], [`Fault::RateLimited`], [`Fault::Unauthorized`]) apply to every
/// path; the stream faults apply to chat answers only.
///
/// "Chunk" means one wire line (Ollama NDJSON) or one SSE event (OpenAI), counting every
/// line/event the server would send for the reply, including the role and final ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Server-wide: the server stops listening before `set_fault` returns, so connecting
    /// fails with "connection refused" (the port stays reserved and is listened on again
    /// when the fault is cleared); requests on connections kept alive from before are
    /// closed without a response. Per script: the connection is closed without any
    /// response.
    Refuse,
    /// Server-wide: new TCP connections are accepted but nothing is ever read or written
    /// (they stay open until the server stops); requests on connections kept alive from
    /// before are read but never answered. Per script: the request is read but never
    /// answered.
    AcceptAndHang,
    /// Send the first `n` chunks, then stay silent forever with the connection open.
    /// Not streamed: the response is never answered.
    HangAfterChunks(usize),
    /// Send the first `n` chunks, then abort the connection (chunked body left unterminated).
    /// Not streamed: half the body is sent, then the connection is aborted.
    DropAfterChunks(usize),
    /// After the first chunk, a line that is not valid JSON; the stream then goes on
    /// normally. Not streamed: the body is not valid JSON.
    MalformedLine,
    /// After the first chunk, an error line (Ollama `{"error":"…"}`; OpenAI
    /// `data: {"error":{…}}`) and the stream ends. Not streamed: HTTP 500 with that error.
    ErrorLine(String),
    /// An HTTP error before any output, with the API's error body (Ollama
    /// `{"error":message}`, OpenAI `{"error":{"message","type","param","code"}}`).
    ///
    /// OpenAI's `type` and `code` follow the status: 401 `invalid_api_key`, 404
    /// `model_not_found`, 429 `rate_limit_exceeded` (`insufficient_quota` when the message
    /// mentions "quota"), 400 `context_length_exceeded` when the message mentions "context
    /// length" (else no code), 5xx `server_error` with no code.
    HttpError {
        /// HTTP status code.
        status: u16,
        /// Error message.
        message: String,
    },
    /// After the first chunk, one valid chunk whose text is this many bytes long (a line
    /// longer than a client's line limit); the stream then goes on normally.
    /// Not streamed: no effect.
    OversizedLine(usize),
    /// HTTP 429 with `retry-after` and a rate-limit error body.
    RateLimited {
        /// Value of the `retry-after` header, in seconds.
        retry_after_secs: u64,
    },
    /// HTTP 401 with an authentication error body (OpenAI `invalid_api_key`).
    Unauthorized,
    /// The stream ends cleanly (terminated chunked body) but without its final part:
    /// no `done:true` line (Ollama) / no finish chunk, usage chunk or `[DONE]` (OpenAI).
    /// Not streamed: the body is cut in half (a complete HTTP response, invalid JSON).
    NoDone,
    /// After the first chunk, one valid-looking chunk whose text holds a byte that is not
    /// UTF-8 (0xFF); the stream then goes on normally. Not streamed: no effect.
    InvalidUtf8,
}

impl Fault {
    /// Whether this fault acts at connection or HTTP level (and so applies to every path
    /// when set server-wide).
    pub fn is_request_level(&self) -> bool {
        matches!(
            self,
            Fault::Refuse
                | Fault::AcceptAndHang
                | Fault::HttpError { .. }
                | Fault::RateLimited { .. }
                | Fault::Unauthorized
        )
    }
}
