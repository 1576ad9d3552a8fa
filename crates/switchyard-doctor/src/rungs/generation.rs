//! What the generation rungs (7, 8, 9) share: the tiny requests, a timed read of a stream,
//! and where a failed generation belongs on the ladder.

use std::time::{Duration, Instant};

use futures::StreamExt;
use switchyard_core::{
    ChatEvent, ChatRequest, ErrorKind, Message, ProviderError, ReasonCode, TimeoutPhase,
};

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::Rung;

/// The output limit of the non-streamed probe.
pub(crate) const TINY_OUTPUT: u32 = 8;
/// The output limit of the streamed probe: enough tokens to see how they are spaced.
pub(crate) const STREAM_OUTPUT: u32 = 24;
/// The output limit of the tool probe. A call's JSON needs a few dozen tokens, but a
/// thinking model (qwen3, OpenAI's o-series, whose limit counts reasoning tokens) reasons
/// first, often a few hundred tokens for this prompt; a model that calls at once stops
/// long before the limit, so it costs only the thinkers.
pub(crate) const TOOL_OUTPUT: u32 = 1024;
/// The tool offered by rung 9.
pub(crate) const TOOL_NAME: &str = "get_current_time";
/// The most events kept from one probe answer.
const MAX_EVENTS: usize = 4096;

/// A minimal request for `model`: one word non-streamed; a short count when streamed, so
/// that the spacing of the chunks shows.
pub(crate) fn tiny_request(model: &str, stream: bool) -> ChatRequest {
    let (prompt, limit) = if stream {
        (
            "Count from 1 to 8, separated by spaces, and nothing else.",
            STREAM_OUTPUT,
        )
    } else {
        ("Reply with the single word: ok", TINY_OUTPUT)
    };
    let mut request = ChatRequest::new(model, vec![Message::user(prompt)]);
    request.options.max_tokens = Some(limit);
    request.options.temperature = Some(0.0);
    request.stream = stream;
    request.meta.request_id = "switchyard-doctor".to_owned();
    request
}

/// A request offering one tiny tool that the prompt asks the model to call.
pub(crate) fn tool_request(model: &str) -> ChatRequest {
    let mut request = ChatRequest::new(
        model,
        vec![Message::user(
            "What time is it in UTC? Call the get_current_time tool with timezone \"UTC\" \
             instead of answering in text.",
        )],
    );
    request.tools = vec![switchyard_core::ToolSpec {
        name: TOOL_NAME.to_owned(),
        description: Some("Returns the current time in a timezone.".to_owned()),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "IANA name, e.g. UTC"}},
            "required": ["timezone"]
        }),
    }];
    request.options.max_tokens = Some(TOOL_OUTPUT);
    request.options.temperature = Some(0.0);
    request.stream = true;
    request.meta.request_id = "switchyard-doctor".to_owned();
    request
}

/// What a timed read of a stream saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timed {
    /// The events, in order (bounded).
    pub(crate) events: Vec<ChatEvent>,
    /// From sending the request to the first output event.
    pub(crate) ttft: Option<Duration>,
    /// The largest gap between two events after the first output.
    pub(crate) max_gap: Duration,
    /// Output events (text, thinking, tool calls).
    pub(crate) output_events: usize,
    /// From the first to the last output event.
    pub(crate) spread: Duration,
    /// The whole exchange.
    pub(crate) total: Duration,
}

impl Timed {
    /// Upstream-reported load time, when the upstream reports timings (Ollama).
    pub(crate) fn load_time(&self) -> Option<Duration> {
        self.events.iter().find_map(|e| match e {
            ChatEvent::Usage(u) => u.timings.map(|t| Duration::from_nanos(t.load_ns)),
            _ => None,
        })
    }
}

/// Why a timed generation did not complete.
#[derive(Debug)]
pub(crate) enum GenerationError {
    /// The provider failed.
    Provider(ProviderError),
    /// The doctor's own limit ran out.
    Limit(Duration),
}

/// Sends `request` and reads the whole answer, timing it, within `limit`.
pub(crate) async fn run_timed(
    ladder: &Ladder<'_>,
    request: &ChatRequest,
    limit: Duration,
) -> Result<Timed, GenerationError> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let provider = ladder.upstream.provider();
    let mut stream = match tokio::time::timeout_at(deadline, provider.chat(request)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(GenerationError::Provider(e)),
        Err(_) => return Err(GenerationError::Limit(limit)),
    };
    let mut timed = Timed::default();
    let mut first_output: Option<Instant> = None;
    let mut last_event: Option<Instant> = None;
    let mut last_output: Option<Instant> = None;
    loop {
        let next = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(n) => n,
            Err(_) => return Err(GenerationError::Limit(limit)),
        };
        let Some(item) = next else {
            return Err(GenerationError::Provider(ProviderError::ended_early(
                "the stream ended without its final event",
            )));
        };
        let event = item.map_err(GenerationError::Provider)?;
        let now = Instant::now();
        if let (Some(prev), Some(_)) = (last_event, first_output) {
            timed.max_gap = timed.max_gap.max(now.duration_since(prev));
        }
        last_event = Some(now);
        if event.is_output() {
            timed.output_events += 1;
            if first_output.is_none() {
                first_output = Some(now);
                timed.ttft = Some(now.duration_since(started));
            }
            last_output = Some(now);
        }
        let done = matches!(event, ChatEvent::Done { .. });
        if timed.events.len() < MAX_EVENTS {
            timed.events.push(event);
        }
        if done {
            break;
        }
    }
    if let (Some(a), Some(b)) = (first_output, last_output) {
        timed.spread = b.duration_since(a);
    }
    timed.total = started.elapsed();
    Ok(timed)
}

/// Records a failed generation on the rung it belongs to.
pub(crate) fn record_failure(
    ladder: &mut Ladder<'_>,
    rung: Rung,
    model: &str,
    err: GenerationError,
    streamed: bool,
) {
    let err = match err {
        GenerationError::Limit(limit) => {
            let finding = Finding::GenerationFailed {
                streamed,
                reason_code: ReasonCode::Error(ErrorKind::Timeout(TimeoutPhase::FirstToken)),
                message: format!(
                    "no complete answer within the doctor's limit of {} s",
                    limit.as_secs()
                ),
            };
            ladder.checks.push(finding.check(rung).subject(model));
            return;
        }
        GenerationError::Provider(e) => e,
    };
    if let Some(f) = crate::rungs::anthropic::overloaded(ladder.probe, &err) {
        ladder.checks.push(f.check(rung).subject(model));
        return;
    }
    if let Some(f) = ladder.account_finding(&err) {
        ladder.push(Rung::Account, &f);
        return;
    }
    let chat_path = match ladder.probe.api {
        ProbeApi::Ollama => "/api/chat",
        ProbeApi::OpenAi => "/chat/completions",
        ProbeApi::Anthropic => "/v1/messages",
    };
    let (rung, finding) = match err.kind() {
        ErrorKind::EndpointNotFound => (
            Rung::Paths,
            Finding::PathBlocked {
                path: chat_path.to_owned(),
                working: "the catalog".to_owned(),
                status: err.status().unwrap_or(404),
            },
        ),
        ErrorKind::ModelNotFound => (
            Rung::Catalog,
            Finding::ModelMissing {
                model: model.to_owned(),
                api: ladder.probe.api,
                base_url: ladder.api_base.clone(),
                // Anthropic's catalog is listed before generating: name what the key sees.
                similar: if ladder.probe.api == ProbeApi::Anthropic {
                    crate::rungs::catalog::similar_names(model, &ladder.server_models)
                } else {
                    Vec::new()
                },
            },
        ),
        ErrorKind::InvalidRequest
            if rung == Rung::Tools
                && err
                    .message()
                    .to_ascii_lowercase()
                    .contains("does not support tools") =>
        {
            (
                Rung::Tools,
                Finding::NoToolsCapability {
                    model: model.to_owned(),
                },
            )
        }
        _ => (
            rung,
            Finding::GenerationFailed {
                streamed,
                reason_code: ReasonCode::Error(err.kind()),
                message: err.message().to_owned(),
            },
        ),
    };
    ladder.checks.push(finding.check(rung).subject(model));
}

/// Whether the stream looks buffered by something in between: several output events that
/// all arrived at once, after a first token slow enough that a real stream would have
/// spread them out.
pub(crate) fn looks_buffered(output_events: usize, spread: Duration, ttft: Duration) -> bool {
    output_events >= 4 && spread < Duration::from_millis(2) && ttft >= Duration::from_millis(250)
}

/// Whether `text` holds a call of `tool` written as text (Hermes `<tool_call>`, Mistral
/// `[TOOL_CALLS]`, Llama `<|python_tag|>`, or a bare or fenced JSON object naming it).
pub(crate) fn looks_like_text_tool_call(text: &str, tool: &str) -> bool {
    if ["<tool_call>", "[TOOL_CALLS]", "<|python_tag|>"]
        .iter()
        .any(|tag| text.contains(tag))
    {
        return true;
    }
    let names_tool = text.contains(&format!("\"{tool}\""));
    let has_args = text.contains("\"arguments\"") || text.contains("\"parameters\"");
    names_tool && has_args && text.contains("\"name\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tool_calls_are_recognised() {
        let t = TOOL_NAME;
        assert!(looks_like_text_tool_call(
            "<tool_call>\n{\"name\": \"x\"}\n</tool_call>",
            t
        ));
        assert!(looks_like_text_tool_call(
            "[TOOL_CALLS][{\"name\": \"get_current_time\"}]",
            t
        ));
        assert!(looks_like_text_tool_call(
            "```json\n{\"name\": \"get_current_time\", \"parameters\": {\"timezone\": \"UTC\"}}\n```",
            t
        ));
        assert!(looks_like_text_tool_call(
            "<|python_tag|>{\"name\": \"get_current_time\"}",
            t
        ));
        assert!(!looks_like_text_tool_call("It is 12:00 in UTC.", t));
        assert!(!looks_like_text_tool_call(
            "{\"name\": \"other\", \"arguments\": {}}",
            t
        ));
    }

    #[test]
    fn buffering_needs_many_events_at_once_after_a_slow_start() {
        let ms = Duration::from_millis;
        assert!(looks_buffered(8, ms(0), ms(900)));
        assert!(
            !looks_buffered(8, ms(0), ms(20)),
            "a fast local answer can arrive at once"
        );
        assert!(!looks_buffered(8, ms(150), ms(900)), "spread out: streamed");
        assert!(!looks_buffered(2, ms(0), ms(900)), "too few events to tell");
    }

    #[test]
    fn requests_are_tiny() {
        let r = tiny_request("m", false);
        assert_eq!(r.options.max_tokens, Some(TINY_OUTPUT));
        assert!(!r.stream);
        assert_eq!(
            tiny_request("m", true).options.max_tokens,
            Some(STREAM_OUTPUT)
        );
        let t = tool_request("m");
        assert_eq!(t.tools.len(), 1);
        assert!(t.stream);
    }
}
