//! The events a chat stream is made of, whatever API it came from.

use serde::{Deserialize, Serialize};

/// One event of a streamed chat answer.
///
/// Tool calls come as `ToolCallStart`, zero or more `ToolCallArgs` fragments and
/// `ToolCallEnd`, keyed by `index`, so arguments can stream to OpenAI clients as they
/// arrive; an upstream that delivers calls whole (Ollama) yields all three at once.
/// A well-formed stream ends with exactly one [`ChatEvent::Done`]; a stream that ends
/// without it is an error ([`crate::ErrorKind::StreamEndedEarly`]), never a normal end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ChatEvent {
    /// A piece of the answer's text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A piece of the model's reasoning.
    ThinkingDelta {
        /// The text.
        text: String,
    },
    /// A tool call begins.
    ToolCallStart {
        /// Position of the call within this answer (0, 1, ...).
        index: u32,
        /// The call's id (`call_…`).
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A fragment of a tool call's JSON arguments; the fragments of one call,
    /// concatenated, form a JSON object.
    ToolCallArgs {
        /// The call this fragment belongs to.
        index: u32,
        /// The fragment.
        fragment: String,
    },
    /// A tool call's arguments are complete.
    ToolCallEnd {
        /// The call that ended.
        index: u32,
    },
    /// The signature of the thinking so far (Anthropic `signature_delta`); must reach the
    /// client unchanged when it speaks Anthropic, other APIs drop it.
    ThinkingSignature {
        /// The opaque signature.
        signature: String,
    },
    /// A `redacted_thinking` block's opaque data (Anthropic); other APIs drop it.
    RedactedThinking {
        /// The opaque data.
        data: String,
    },
    /// A content-block event of a kind the gateway does not model, kept verbatim so that an
    /// answer reaches a client of the same API untouched (Anthropic: `citations_delta`, text
    /// blocks that carry citations, `server_tool_use`, `web_search_tool_result` and other
    /// block types); encoders of other APIs drop it. Text inside such blocks that other APIs
    /// can show still comes as [`ChatEvent::TextDelta`].
    Opaque {
        /// The upstream's content-block index (an encoder numbers its own blocks).
        index: u32,
        /// Where in the block's life the event stands.
        part: OpaquePart,
        /// The JSON verbatim: the `content_block` of a start, the `delta` of a delta; empty
        /// for a stop.
        json: String,
    },
    /// Token counts (and, from Ollama, timings).
    Usage(Usage),
    /// The answer is complete.
    Done {
        /// Why the model stopped.
        finish_reason: FinishReason,
    },
}

impl ChatEvent {
    /// A text delta.
    pub fn text(text: impl Into<String>) -> Self {
        ChatEvent::TextDelta { text: text.into() }
    }

    /// A thinking delta.
    pub fn thinking(text: impl Into<String>) -> Self {
        ChatEvent::ThinkingDelta { text: text.into() }
    }

    /// The final event.
    pub fn done(finish_reason: FinishReason) -> Self {
        ChatEvent::Done { finish_reason }
    }

    /// Whether this event carries output a client would see (text, thinking or a tool call),
    /// as opposed to bookkeeping (usage, done).
    pub fn is_output(&self) -> bool {
        !matches!(self, ChatEvent::Usage(_) | ChatEvent::Done { .. })
    }
}

/// Where an [`ChatEvent::Opaque`] event stands in its content block's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpaquePart {
    /// The block starts (`content_block_start`): the JSON is the block.
    Start,
    /// A delta of the block (`content_block_delta`): the JSON is the delta.
    Delta,
    /// The block ends (`content_block_stop`).
    Stop,
}

/// An [`ChatEvent::Opaque`] event kept in a whole answer, with the length the answer's
/// text had when it came, so that an encoder of the same API can rebuild the blocks in
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueMark {
    /// The length (bytes) of the answer's text before this event.
    pub text_at: usize,
    /// The upstream's content-block index.
    pub index: u32,
    /// Where in the block's life the event stands.
    pub part: OpaquePart,
    /// The JSON verbatim (empty for a stop).
    pub json: String,
}

impl OpaqueMark {
    /// The `index` of the marks the gateway itself writes into a whole answer for a block it
    /// models: a `thinking` or `redacted_thinking` block of an answer whose blocks the plain
    /// layout would misorder (see [`crate::ChatResponse::has_placed_thinking`]). The start
    /// mark's JSON is the block as Anthropic writes it, the stop mark's is empty.
    pub const PLACED: u32 = u32::MAX;
}

/// Token counts and timings for one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Upstream timings, when the upstream reports them (Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// Prompt tokens read from the provider's prompt cache (Anthropic
    /// `cache_read_input_tokens`), not part of `prompt_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u32,
    /// Prompt tokens written to the provider's prompt cache (Anthropic
    /// `cache_creation_input_tokens`), not part of `prompt_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_tokens: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u64 {
        u64::from(self.prompt_tokens) + u64::from(self.completion_tokens)
    }

    /// Every prompt token, read from or written to a prompt cache or not: what OpenAI's
    /// `prompt_tokens` and the Responses API's `input_tokens` count (Anthropic counts the
    /// cached ones apart).
    ///
    /// ```
    /// use switchyard_core::Usage;
    /// let u = Usage { prompt_tokens: 5, completion_tokens: 3, cache_read_tokens: 4000, ..Usage::default() };
    /// assert_eq!(u.all_prompt_tokens(), 4005);
    /// assert_eq!(u.all_tokens(), 4008);
    /// ```
    pub fn all_prompt_tokens(&self) -> u32 {
        self.prompt_tokens
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_creation_tokens)
    }

    /// [`Usage::all_prompt_tokens`] plus completion tokens.
    pub fn all_tokens(&self) -> u64 {
        u64::from(self.all_prompt_tokens()) + u64::from(self.completion_tokens)
    }
}

/// Ollama's durations, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Whole request.
    pub total_ns: u64,
    /// Loading the model (large on a cold start).
    pub load_ns: u64,
    /// Evaluating the prompt.
    pub prompt_eval_ns: u64,
    /// Generating the answer.
    pub eval_ns: u64,
}

/// Why a model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end (or a stop sequence the upstream did not name).
    Stop,
    /// One of the request's stop sequences was generated (Anthropic names it).
    StopSequence(String),
    /// The output limit was reached.
    Length,
    /// The model made tool calls and waits for their results.
    ToolCalls,
    /// A content filter removed output.
    ContentFilter,
    /// Any other reason the upstream gave (Ollama's `load`, `unload`, ...).
    Other(String),
}

/// [`FinishReason::ToolCalls`], lent by [`FinishReason::answering_calls`].
static TOOL_CALLS: FinishReason = FinishReason::ToolCalls;

impl FinishReason {
    /// Anthropic's `stop_reason` for an answer cut because the model's context window was
    /// full, kept as [`FinishReason::Other`] (see [`FinishReason::is_cut`]).
    pub const CONTEXT_WINDOW_EXCEEDED: &'static str = "model_context_window_exceeded";

    /// The reason to tell a client whose answer holds tool calls (`made_calls`): a plain
    /// stop becomes [`FinishReason::ToolCalls`] (the model waits for their results); a
    /// length, stop-sequence, content-filter or other stop is kept, since the upstream
    /// ended the answer for that reason.
    ///
    /// ```
    /// use switchyard_core::FinishReason;
    /// assert_eq!(FinishReason::Stop.answering_calls(true), &FinishReason::ToolCalls);
    /// assert_eq!(FinishReason::Length.answering_calls(true), &FinishReason::Length);
    /// assert_eq!(FinishReason::Stop.answering_calls(false), &FinishReason::Stop);
    /// ```
    pub fn answering_calls(&self, made_calls: bool) -> &FinishReason {
        if made_calls && *self == FinishReason::Stop {
            &TOOL_CALLS
        } else {
            self
        }
    }

    /// Whether the answer was cut for lack of room: the output limit was reached
    /// ([`FinishReason::Length`]) or the context window was full (Anthropic's
    /// [`FinishReason::CONTEXT_WINDOW_EXCEEDED`]).
    ///
    /// ```
    /// use switchyard_core::FinishReason;
    /// assert!(FinishReason::Length.is_cut());
    /// assert!(FinishReason::Other(FinishReason::CONTEXT_WINDOW_EXCEEDED.into()).is_cut());
    /// assert!(!FinishReason::Other("pause_turn".into()).is_cut());
    /// ```
    pub fn is_cut(&self) -> bool {
        match self {
            FinishReason::Length => true,
            FinishReason::Other(r) => r == Self::CONTEXT_WINDOW_EXCEEDED,
            _ => false,
        }
    }

    /// The reason as an OpenAI chat client may receive it: `stop`, `length`, `tool_calls`
    /// or `content_filter`. An answer cut for lack of room ([`FinishReason::is_cut`]) reads
    /// as `length`; another upstream's reason (Anthropic's `pause_turn`, Ollama's `unload`)
    /// as `stop`.
    ///
    /// ```
    /// use switchyard_core::FinishReason;
    /// assert_eq!(FinishReason::Other(FinishReason::CONTEXT_WINDOW_EXCEEDED.into()).openai_str(), "length");
    /// assert_eq!(FinishReason::Other("pause_turn".into()).openai_str(), "stop");
    /// ```
    pub fn openai_str(&self) -> &'static str {
        if self.is_cut() {
            return "length";
        }
        match self {
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            _ => "stop",
        }
    }

    /// The reason as OpenAI spells it (unknown reasons pass through; for logs and records,
    /// see [`FinishReason::openai_str`] for clients).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop | FinishReason::StopSequence(_) => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }

    /// Parses a finish reason from either API.
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" | "end_turn" | "stop_sequence" => FinishReason::Stop,
            "length" | "max_tokens" => FinishReason::Length,
            "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
    }
}
