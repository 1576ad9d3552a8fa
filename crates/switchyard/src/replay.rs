//! `switchyard replay`: decodes a captured stream with the same decoders the gateway uses
//! and prints the normalised events as JSON lines, or re-encodes them as one API's stream.
//! For triage ("what did the upstream actually say?") and for attaching to tickets.

use std::io::{Read, Write};

use serde::Serialize;
use switchyard_core::{ChatEvent, ProviderError};
use switchyard_stream::anthropic::{AnthropicStreamDecoder, AnthropicStreamEncoder};
use switchyard_stream::ollama::{OllamaStreamDecoder, OllamaStreamEncoder};
use switchyard_stream::openai::{OpenAiStreamDecoder, OpenAiStreamEncoder};

use crate::cli::{ReplayArgs, WireApi};

/// Bytes read per step.
const READ_CHUNK: usize = 64 * 1024;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    /// The input could not be read or the output written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The stream itself is broken (shown in the output, too).
    #[error("the stream is broken: {0}")]
    Stream(ProviderError),
}

enum Decoder {
    Ollama(Box<OllamaStreamDecoder>),
    OpenAi(Box<OpenAiStreamDecoder>),
    Anthropic(Box<AnthropicStreamDecoder>),
}

impl Decoder {
    fn new(api: WireApi) -> Self {
        // A fixed seed: replaying the same capture twice gives the same synthesised ids.
        match api {
            WireApi::Ollama => Decoder::Ollama(Box::new(OllamaStreamDecoder::with_id_seed(0))),
            WireApi::Openai => Decoder::OpenAi(Box::new(OpenAiStreamDecoder::with_id_seed(0))),
            WireApi::Anthropic => Decoder::Anthropic(Box::new(AnthropicStreamDecoder::new())),
        }
    }

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        match self {
            Decoder::Ollama(d) => d.feed(bytes, out),
            Decoder::OpenAi(d) => d.feed(bytes, out),
            Decoder::Anthropic(d) => d.feed(bytes, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        match self {
            Decoder::Ollama(d) => d.finish(out),
            Decoder::OpenAi(d) => d.finish(out),
            Decoder::Anthropic(d) => d.finish(out),
        }
    }
}

/// Where decoded events go.
enum Sink {
    /// One JSON object per event.
    JsonLines,
    /// Ollama NDJSON.
    Ollama(OllamaStreamEncoder),
    /// OpenAI SSE.
    OpenAi(OpenAiStreamEncoder),
    /// Anthropic SSE.
    Anthropic(AnthropicStreamEncoder),
}

/// An error as a JSON line.
#[derive(Serialize)]
struct ErrorLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    reason: &'a str,
    message: &'a str,
}

impl Sink {
    fn new(to: Option<WireApi>, model: &str) -> Self {
        // Fixed id and timestamps keep re-encoded captures reproducible.
        match to {
            None => Sink::JsonLines,
            Some(WireApi::Ollama) => {
                Sink::Ollama(OllamaStreamEncoder::new(model, "1970-01-01T00:00:00Z"))
            }
            Some(WireApi::Openai) => {
                Sink::OpenAi(OpenAiStreamEncoder::new(model, "chatcmpl-replay", 0, true))
            }
            // No input figure is known before the end; the real count follows in message_delta.
            Some(WireApi::Anthropic) => {
                Sink::Anthropic(AnthropicStreamEncoder::new(model, "msg_replay", 1))
            }
        }
    }

    fn events(&mut self, events: &[ChatEvent], out: &mut Vec<u8>) -> std::io::Result<()> {
        for event in events {
            match self {
                Sink::JsonLines => {
                    serde_json::to_writer(&mut *out, event)?;
                    out.push(b'\n');
                }
                Sink::Ollama(enc) => enc.encode(event, out),
                Sink::OpenAi(enc) => enc.encode(event, out),
                Sink::Anthropic(enc) => enc.encode(event, out),
            }
        }
        Ok(())
    }

    fn error(&mut self, error: &ProviderError, out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Sink::JsonLines => {
                let line = ErrorLine {
                    kind: "error",
                    reason: error.reason_code(),
                    message: error.message(),
                };
                serde_json::to_writer(&mut *out, &line)?;
                out.push(b'\n');
            }
            Sink::Ollama(enc) => enc.encode_error(error, out),
            Sink::OpenAi(enc) => enc.encode_error(error, out),
            Sink::Anthropic(enc) => enc.encode_error(error, out),
        }
        Ok(())
    }
}

/// Replays `input` into `output`. A broken stream is written as an error event (in the
/// output's own shape) and returned as [`ReplayError::Stream`].
pub(crate) fn replay(
    from: WireApi,
    to: Option<WireApi>,
    model: &str,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<(), ReplayError> {
    let mut decoder = Decoder::new(from);
    let mut sink = Sink::new(to, model);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut events = Vec::new();
    let mut out = Vec::new();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let result = decoder.feed(&buf[..n], &mut events);
        sink.events(&events, &mut out)?;
        events.clear();
        if let Err(e) = result {
            sink.error(&e, &mut out)?;
            output.write_all(&out)?;
            return Err(ReplayError::Stream(e));
        }
        output.write_all(&out)?;
        out.clear();
    }
    let result = decoder.finish(&mut events);
    sink.events(&events, &mut out)?;
    if let Err(e) = &result {
        sink.error(e, &mut out)?;
    }
    output.write_all(&out)?;
    output.flush()?;
    result.map_err(ReplayError::Stream)
}

/// Runs the subcommand; the exit code is 0 for a complete stream (or when the reader of
/// the output went away), 1 for a broken one, 2 when the file cannot be read.
pub(crate) fn run(args: &ReplayArgs) -> u8 {
    let stdout = std::io::stdout();
    let result = if args.file.as_os_str() == "-" {
        replay(
            args.from,
            args.to,
            &args.model,
            std::io::stdin().lock(),
            stdout.lock(),
        )
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => replay(args.from, args.to, &args.model, f, stdout.lock()),
            Err(e) => {
                errln!(
                    "switchyard replay: cannot read {}: {e}",
                    args.file.display()
                );
                return 2;
            }
        }
    };
    match result {
        Ok(()) => 0,
        Err(ReplayError::Stream(e)) => {
            errln!("switchyard replay: {} ({})", e.message(), e.reason_code());
            1
        }
        // The reader went away (`| head`): stop quietly, as for the other commands.
        Err(ReplayError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(ReplayError::Io(e)) => {
            errln!("switchyard replay: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLLAMA: &str = concat!(
        r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hel"},"done":false}"#,
        "\n",
        r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"lo"},"done":false}"#,
        "\n",
        r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Oslo"}}}]},"done":false}"#,
        "\n",
        r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}"#,
        "\n"
    );

    fn run_to_string(from: WireApi, to: Option<WireApi>, input: &[u8]) -> (String, bool) {
        let mut out = Vec::new();
        let ok = replay(from, to, "m", input, &mut out).is_ok();
        (String::from_utf8(out).unwrap(), ok)
    }

    #[test]
    fn ollama_capture_prints_events_as_json_lines() {
        let (out, ok) = run_to_string(WireApi::Ollama, None, OLLAMA.as_bytes());
        assert!(ok, "{out}");
        let events: Vec<ChatEvent> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events[0], ChatEvent::text("Hel"));
        assert!(
            events.iter().any(
                |e| matches!(e, ChatEvent::ToolCallStart { name, .. } if name == "get_weather")
            )
        );
        assert!(matches!(events.last(), Some(ChatEvent::Done { .. })));
    }

    #[test]
    fn ollama_capture_reencodes_as_openai_sse_and_back() {
        let (sse, ok) = run_to_string(WireApi::Ollama, Some(WireApi::Openai), OLLAMA.as_bytes());
        assert!(ok, "{sse}");
        assert!(sse.starts_with("data: "), "{sse}");
        assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");
        assert!(sse.contains("get_weather"));
        // The SSE decodes back to the same text.
        let (lines, ok) = run_to_string(WireApi::Openai, None, sse.as_bytes());
        assert!(ok, "{lines}");
        assert!(lines.contains(r#""text":"Hel""#), "{lines}");
        let (ndjson, ok) = run_to_string(WireApi::Openai, Some(WireApi::Ollama), sse.as_bytes());
        assert!(ok);
        assert!(
            ndjson.lines().last().unwrap().contains(r#""done":true"#),
            "{ndjson}"
        );
    }

    #[test]
    fn truncated_capture_ends_with_an_error_event() {
        let cut = &OLLAMA[..OLLAMA.find("\"done\":true").unwrap() - 20];
        let (out, ok) = run_to_string(WireApi::Ollama, None, cut.as_bytes());
        assert!(!ok);
        let last = out.lines().last().unwrap();
        assert!(last.contains(r#""type":"error""#), "{out}");
        let (out, ok) = run_to_string(WireApi::Ollama, Some(WireApi::Openai), cut.as_bytes());
        assert!(!ok);
        assert!(out.contains("error"), "{out}");
    }

    #[test]
    fn garbage_is_a_classified_error_not_a_panic() {
        let (out, ok) = run_to_string(WireApi::Openai, None, b"data: {not json\n\n");
        assert!(!ok);
        assert!(out.contains("malformed"), "{out}");
    }

    #[test]
    fn ollama_capture_reencodes_as_anthropic_sse_and_back() {
        let to = Some(WireApi::Anthropic);
        let (sse, ok) = run_to_string(WireApi::Ollama, to, OLLAMA.as_bytes());
        assert!(ok, "{sse}");
        assert!(sse.starts_with("event: message_start\n"), "{sse}");
        assert!(sse.contains(r#""stop_reason":"tool_use""#), "{sse}");
        assert!(sse.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        let (lines, ok) = run_to_string(WireApi::Anthropic, None, sse.as_bytes());
        assert!(ok, "{lines}");
        let events: Vec<ChatEvent> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events[..2], [ChatEvent::text("Hel"), ChatEvent::text("lo")]);
        let calls = events
            .iter()
            .filter(|e| matches!(e, ChatEvent::ToolCallStart { .. }))
            .count();
        assert_eq!(calls, 1);
    }
}
