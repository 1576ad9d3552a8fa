//! The transport half of a chat call, the same for every upstream client: send the
//! request, then either drive a sans-IO decoder over the streamed body under the phase
//! timeouts, or read the whole body and decode it.

use switchyard_core::{ChatResponse, ChatStream, ProviderError};
use switchyard_stream::decoder::{EventDecoder, recover_tool_calls};
use switchyard_stream::recovery::TextToolCallRecovery;

use crate::client::Timeouts;
use crate::direct::{DirectBody, DirectClient, body_error};
use crate::errors::error_from_direct;
use crate::send::{
    first_deadline, header_timeout, read_body_timed, read_stream_timed, send_request,
};
use crate::timed::TimedEventStream;

/// Sends a streamed chat `request` to `url` and returns once the server answered with
/// headers (errors before output are returned here); the stream then yields `decoder`'s
/// events under `timeouts`' phases.
pub async fn chat_stream<D: EventDecoder>(
    request: reqwest::RequestBuilder,
    decoder: D,
    timeouts: Timeouts,
    url: &str,
) -> Result<ChatStream, ProviderError> {
    let started = send_request(request, &timeouts, url).await?;
    Ok(Box::pin(TimedEventStream::new(
        started.response,
        decoder,
        timeouts,
        started.started,
        url.to_owned(),
    )))
}

/// [`chat_stream`] over a [`DirectClient`] (a plain `http://` upstream without a proxy):
/// the same phases, errors and decoding, with the connection driven by the stream itself.
pub async fn chat_stream_direct<D: EventDecoder>(
    client: &DirectClient,
    body: Vec<u8>,
    decoder: D,
    timeouts: Timeouts,
) -> Result<ChatStream, ProviderError> {
    use futures::TryStreamExt as _;
    let url = client.url();
    let (body, started) = send_direct(client, body, &timeouts).await?;
    let named = url.to_owned();
    let body = body.map_err(move |e| body_error(e, &named));
    Ok(Box::pin(TimedEventStream::over(
        Box::pin(body),
        decoder,
        timeouts,
        started,
        url.to_owned(),
    )))
}

/// Posts `body` over `client` and waits for a successful answer's head within the
/// first-token phase: its body and when the request was sent. A non-2xx answer is its
/// classified error.
async fn send_direct(
    client: &DirectClient,
    body: Vec<u8>,
    timeouts: &Timeouts,
) -> Result<(DirectBody, tokio::time::Instant), ProviderError> {
    let url = client.url();
    let started = tokio::time::Instant::now();
    let (deadline, phase) = first_deadline(started, timeouts);
    let sent = tokio::time::timeout_at(deadline, client.post(body.into())).await;
    let (head, body) = match sent {
        Err(_elapsed) => return Err(header_timeout(phase, timeouts, url)),
        Ok(answer) => answer?,
    };
    let status = head.status();
    if !status.is_success() {
        let limit = timeouts.idle;
        return Err(error_from_direct(status.as_u16(), head.headers(), body, url, limit).await);
    }
    Ok((body, started))
}

/// [`complete`] over a [`DirectClient`]: the whole answer of the chat `body`, at most
/// `max_body` bytes read under `timeouts`, decoded by `decode`, with text tool-call
/// `recovery` when given.
pub async fn complete_direct(
    client: &DirectClient,
    body: Vec<u8>,
    timeouts: &Timeouts,
    max_body: usize,
    decode: impl FnOnce(&[u8]) -> Result<ChatResponse, ProviderError>,
    recovery: Option<TextToolCallRecovery>,
) -> Result<ChatResponse, ProviderError> {
    let url = client.url();
    let (body, started) = send_direct(client, body, timeouts).await?;
    let bytes = read_stream_timed(body, max_body, timeouts, started, url, |e| {
        body_error(e, url)
    })
    .await?;
    let answer = decode(&bytes).map_err(|e| e.context(url))?;
    recover_tool_calls(answer, recovery)
}

/// A whole answer as the stream of events a streamed one would have been (what a client
/// hands the router when it asked the upstream for the whole answer).
pub fn answer_stream(answer: &ChatResponse) -> ChatStream {
    Box::pin(futures::stream::iter(
        answer.to_events().into_iter().map(Ok),
    ))
}

/// Sends a whole (non-streamed) chat `request` to `url`, reads at most `max_body` bytes of
/// the answer under `timeouts`, decodes it with `decode` and applies text tool-call
/// `recovery` when given.
pub async fn complete(
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
    url: &str,
    max_body: usize,
    decode: impl FnOnce(&[u8]) -> Result<ChatResponse, ProviderError>,
    recovery: Option<TextToolCallRecovery>,
) -> Result<ChatResponse, ProviderError> {
    let started = send_request(request, timeouts, url).await?;
    let mut response = started.response;
    let bytes = read_body_timed(&mut response, max_body, timeouts, started.started, url).await?;
    let answer = decode(&bytes).map_err(|e| e.context(url))?;
    recover_tool_calls(answer, recovery)
}
