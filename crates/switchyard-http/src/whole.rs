//! One JSON request with a whole JSON answer (embeddings, non-streamed generate), with the
//! phase timeouts over the wait and the read.

use bytes::Bytes;
use switchyard_core::{EmbedRequest, EmbedResponse, ProviderError};
use switchyard_stream::embed::EmbedEndpoint;

use crate::client::{BaseUrl, Timeouts};
use crate::send::{read_body_timed, send_request};

/// `POST url` with the JSON `body`; the whole answer body, at most `max` bytes. The wait
/// for the answer and its first body byte is the first-token phase, the gaps between later
/// body chunks are bounded by the idle timeout (and `total` bounds all of it); a non-2xx
/// answer is its classified error.
pub async fn post_json_whole(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    timeouts: &Timeouts,
    max: usize,
) -> Result<Bytes, ProviderError> {
    let request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    let started = send_request(request, timeouts, url).await?;
    let mut response = started.response;
    read_body_timed(&mut response, max, timeouts, started.started, url).await
}

/// [`post_json_whole`], the answer decoded by `decode` (a sans-IO codec's whole-answer
/// decoder).
pub async fn post_json_decoded<T>(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    timeouts: &Timeouts,
    decode: fn(&[u8]) -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    let bytes = post_json_whole(http, url, body, timeouts, MAX_WHOLE_ANSWER).await?;
    decode(&bytes)
}

/// Embeddings from an upstream: `endpoint`'s request for `model`, posted below `base`,
/// its whole answer decoded (the clients' `Provider::embed`).
pub async fn embed(
    http: &reqwest::Client,
    base: &BaseUrl,
    timeouts: &Timeouts,
    endpoint: &EmbedEndpoint,
    request: &EmbedRequest,
    model: &str,
) -> Result<EmbedResponse, ProviderError> {
    let url = base.join(endpoint.path);
    let body = (endpoint.encode_request)(request, model);
    post_json_decoded(http, &url, body, timeouts, endpoint.decode_response).await
}

/// The largest whole answer [`post_json_decoded`] reads (64 MiB).
pub const MAX_WHOLE_ANSWER: usize = 64 * 1024 * 1024;
