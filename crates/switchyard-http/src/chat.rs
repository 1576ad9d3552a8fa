//! The transport half of a chat call, the same for every upstream client: send the
//! request, then either drive a sans-IO decoder over the streamed body under the phase
//! timeouts, or read the whole body and decode it.

use switchyard_core::{ChatResponse, ChatStream, ProviderError};
use switchyard_stream::decoder::{EventDecoder, recover_tool_calls};
use switchyard_stream::recovery::TextToolCallRecovery;

use crate::client::Timeouts;
use crate::direct::{DirectClient, body_error};
use crate::errors::error_from_direct;
use crate::send::{first_deadline, header_timeout, read_body_timed, send_request};
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
    let started = tokio::time::Instant::now();
    let (deadline, phase) = first_deadline(started, &timeouts);
    let sent = tokio::time::timeout_at(deadline, client.post(body.into())).await;
    let (head, body) = match sent {
        Err(_elapsed) => return Err(header_timeout(phase, &timeouts, url)),
        Ok(answer) => answer?,
    };
    let status = head.status();
    if !status.is_success() {
        let limit = timeouts.idle;
        return Err(error_from_direct(status.as_u16(), head.headers(), body, url, limit).await);
    }
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
