//! Sending a request with the first-token (and total) deadline over the wait for headers,
//! and reading whole bodies with idle and size bounds.

use bytes::{Bytes, BytesMut};
use switchyard_core::{ErrorKind, ProviderError, TimeoutPhase};
use tokio::time::Instant;

use crate::client::Timeouts;
use crate::errors::{classify_transport_error, error_from_response_within};

/// An upstream's successful answer whose headers arrived, and when the request was sent
/// (the start of the first-token phase, for [`crate::TimedEventStream::new`]).
#[derive(Debug)]
pub struct StartedResponse {
    /// The answer (status 2xx); its body is unread.
    pub response: reqwest::Response,
    /// When the request was sent.
    pub started: Instant,
}

/// Sends `request` and waits for the answer's headers.
///
/// - Connecting is bounded by [`Timeouts::connect`] (set on the client by
///   [`crate::build_client`]): `timeout_connect`; refused, DNS and TLS failures are
///   classified by [`classify_transport_error`].
/// - The wait for headers is part of the first-token phase: an upstream that accepted the
///   connection but does not answer within [`Timeouts::first_token`] gives
///   `timeout_first_token` (or `timeout_total` when [`Timeouts::total`] ends first).
/// - A non-2xx answer becomes the classified error of [`crate::error_from_response`] (its
///   body read within [`Timeouts::idle`]).
///
/// `target` (the URL, say) is prefixed to error messages.
pub async fn send_request(
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
    target: &str,
) -> Result<StartedResponse, ProviderError> {
    let started = Instant::now();
    let (deadline, phase) = first_deadline(started, timeouts);
    let sent = tokio::time::timeout_at(deadline, request.send()).await;
    let response = match sent {
        Err(_elapsed) => return Err(header_timeout(phase, timeouts, target)),
        Ok(Err(e)) => return Err(classify_transport_error(&e, target)),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        return Err(error_from_response_within(response, target, timeouts.idle).await);
    }
    Ok(StartedResponse { response, started })
}

/// The deadline for the answer's headers and the phase that owns it.
pub(crate) fn first_deadline(started: Instant, timeouts: &Timeouts) -> (Instant, TimeoutPhase) {
    let first = started + timeouts.first_token;
    match timeouts.total {
        Some(total) if started + total < first => (started + total, TimeoutPhase::Total),
        _ => (first, TimeoutPhase::FirstToken),
    }
}

pub(crate) fn header_timeout(
    phase: TimeoutPhase,
    timeouts: &Timeouts,
    target: &str,
) -> ProviderError {
    let message = match phase {
        TimeoutPhase::Total => format!(
            "{target}: request not finished within {} ms",
            timeouts.total.unwrap_or_default().as_millis()
        ),
        _ => format!(
            "{target}: no answer within {} ms (first-token timeout; a model that is still \
             loading can take minutes)",
            timeouts.first_token.as_millis()
        ),
    };
    ProviderError::new(ErrorKind::Timeout(phase), message)
}

/// Reads a whole body of at most `max` bytes. Every chunk must arrive within
/// [`Timeouts::idle`] of the previous one (`timeout_idle`) and the whole read must end
/// before [`Timeouts::total`] counted from `started` (`timeout_total`). A body over `max`
/// bytes is a `malformed_stream` error naming the limit; a body that breaks off is
/// `stream_ended_early`.
pub async fn read_body_timed(
    response: &mut reqwest::Response,
    max: usize,
    timeouts: &Timeouts,
    started: Instant,
    target: &str,
) -> Result<Bytes, ProviderError> {
    let chunks = futures::stream::unfold(response, |r| async move {
        r.chunk().await.transpose().map(|chunk| (chunk, r))
    });
    let transport = |e: reqwest::Error| {
        let err = classify_transport_error(&e, target);
        ProviderError::ended_early(err.message().to_owned()).with_source(e)
    };
    read_stream_timed(
        std::pin::pin!(chunks),
        max,
        timeouts,
        started,
        target,
        transport,
    )
    .await
}

/// [`read_body_timed`] over any body stream: the whole body, at most `max` bytes, its first
/// byte within the first-token timeout (or the idle timeout after the head, the later: an
/// upstream that answers its head at once and its body when the model is done is still in
/// the first-token phase), each later chunk within the idle timeout, and all of it within
/// `total`; a transport error becomes `transport`'s error.
pub(crate) async fn read_stream_timed<S, E>(
    mut body: S,
    max: usize,
    timeouts: &Timeouts,
    started: Instant,
    target: &str,
    transport: impl Fn(E) -> ProviderError,
) -> Result<Bytes, ProviderError>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    use futures::StreamExt as _;
    let total_deadline = timeouts.total.map(|t| started + t);
    let (first_deadline, first_phase) = first_deadline(started, timeouts);
    // The first chunk is kept as it came (for the direct client, a slice of the
    // connection's buffer): a body that arrives in one piece, as a whole answer of a few
    // hundred bytes does, is neither copied nor given an allocation of its own. A second
    // chunk starts the copy.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut received = 0usize;
    loop {
        let now = Instant::now();
        let mut deadline = now + timeouts.idle;
        let mut phase = TimeoutPhase::Idle;
        if received == 0 && first_deadline > deadline {
            deadline = first_deadline;
            phase = first_phase;
        }
        if let Some(total) = total_deadline {
            if total <= now {
                // Checked here too: `timeout_at` never fires while the body is always ready.
                return Err(body_stalled(
                    TimeoutPhase::Total,
                    timeouts,
                    received,
                    target,
                ));
            }
            if total < deadline {
                deadline = total;
                phase = TimeoutPhase::Total;
            }
        }
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_elapsed) => return Err(body_stalled(phase, timeouts, received, target)),
            Ok(Some(Err(e))) => return Err(transport(e)),
            Ok(None) => return Ok(first.unwrap_or_else(|| buf.freeze())),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if received + chunk.len() > max {
            return Err(ProviderError::malformed(format!(
                "{target}: the answer is larger than {max} bytes"
            )));
        }
        received += chunk.len();
        match first.take() {
            None if received == chunk.len() => first = Some(chunk),
            Some(earlier) => {
                buf.reserve(received);
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&chunk);
            }
            None => buf.extend_from_slice(&chunk),
        }
    }
}

fn body_stalled(
    phase: TimeoutPhase,
    timeouts: &Timeouts,
    read: usize,
    target: &str,
) -> ProviderError {
    let limit = match phase {
        TimeoutPhase::Total => timeouts.total.unwrap_or_default(),
        TimeoutPhase::FirstToken => timeouts.first_token,
        _ => timeouts.idle,
    };
    ProviderError::new(
        ErrorKind::Timeout(phase),
        format!(
            "{target}: body stalled after {read} bytes (limit {} ms)",
            limit.as_millis()
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::convert::Infallible;

    use super::*;

    async fn read(
        chunks: Vec<&'static [u8]>,
        max: usize,
    ) -> (Result<Bytes, ProviderError>, Vec<Bytes>) {
        let chunks: Vec<Bytes> = chunks.into_iter().map(Bytes::from_static).collect();
        let stream = futures::stream::iter(chunks.clone().into_iter().map(Ok::<_, Infallible>));
        let read = read_stream_timed(
            stream,
            max,
            &Timeouts::default(),
            Instant::now(),
            "http://up",
            |never| match never {},
        )
        .await;
        (read, chunks)
    }

    #[tokio::test]
    async fn a_body_in_one_chunk_is_that_chunk_not_a_copy() {
        let (read, chunks) = read(vec![b"{\"id\":1}"], 1024).await;
        let body = read.unwrap();
        assert_eq!(body, chunks[0]);
        assert_eq!(body.as_ptr(), chunks[0].as_ptr(), "copied");
    }

    #[tokio::test]
    async fn chunks_are_joined_in_order_empty_ones_included() {
        for (parts, whole) in [
            (vec![&b"ab"[..], b"cd", b"e"], &b"abcde"[..]),
            (vec![b"", b"abc"], b"abc"),
            (vec![b"", b"", b"ab", b"", b"c"], b"abc"),
            (vec![b"ab", b""], b"ab"),
            (vec![], b""),
        ] {
            let (read, _) = read(parts.clone(), 1024).await;
            assert_eq!(read.unwrap(), whole, "{parts:?}");
        }
    }

    #[tokio::test]
    async fn the_limit_counts_every_chunk() {
        let (over, _) = read(vec![&b"abc"[..], b"def"], 5).await;
        let err = over.unwrap_err();
        assert!(err.message().contains("larger than 5 bytes"), "{err}");
        let (fits, _) = read(vec![&b"abc"[..], b"de"], 5).await;
        assert_eq!(fits.unwrap(), &b"abcde"[..]);
    }
}
