//! Native pass-through of OpenAI Responses requests (`POST {base}/responses` and
//! `/responses/compact`) to servers that serve the Responses API themselves (OpenAI,
//! Ollama >= 0.13.3, vLLM), for providers configured with
//! [`OpenAiConfig::responses`](crate::OpenAiConfig::responses).
//!
//! The client's body goes out as it is but for `model`; the answer's bytes (SSE events or
//! the whole object) go to the caller's [`RawFrames`] unchanged, while the returned stream
//! yields the chat events they carry (output, usage, the end) under the same phase
//! timeouts as a chat.

use switchyard_core::{
    ChatStream, ErrorKind, MAX_PENDING_FRAME_BYTES, ProviderError, RawFrames, ResponsesEndpoint,
};
use switchyard_http::post_json_whole;
use switchyard_stream::responses::passthrough::{PassThroughDecoder, decode_whole, with_model};

use crate::OpenAiClient;

impl OpenAiClient {
    /// Whether Responses requests go to this upstream natively.
    pub fn serves_responses(&self) -> bool {
        self.config().responses
    }

    /// `POST {base}{endpoint}` with the client's `body`, `model` replacing its model.
    /// Streamed: returns once the server answered with headers, then the stream appends
    /// every upstream event to `frames` and yields the chat events it carries. Whole:
    /// reads the object (at most 32 MiB) into `frames` and yields its events. Errors before
    /// output are returned here, classified as for chats.
    pub async fn responses(
        &self,
        body: &[u8],
        model: &str,
        endpoint: ResponsesEndpoint,
        frames: &RawFrames,
    ) -> Result<ChatStream, ProviderError> {
        let url = self.base_url().to_owned() + endpoint.path();
        let outgoing = with_model(body, model).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidRequest,
                format!("cannot send this request to {url}: {e}"),
            )
            .with_source(e)
        })?;
        let timeouts = self
            .config()
            .client
            .timeouts
            .for_tools(outgoing.offers_tools);
        let body = outgoing.bytes;
        tracing::debug!(url = %url, model = %model, "Responses pass-through request");
        if endpoint.streamed() {
            let post = self
                .http()
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            let decoder = PassThroughDecoder::new(frames.clone());
            return switchyard_http::chat_stream(post, decoder, timeouts, &url).await;
        }
        let max = MAX_PENDING_FRAME_BYTES;
        let answer = post_json_whole(self.http(), &url, body, &timeouts, max).await?;
        let events = decode_whole(&answer).map_err(|e| e.context(&url))?;
        if !frames.push(&answer) {
            return Err(ProviderError::malformed(format!(
                "{url}: the answer exceeds {max} bytes"
            )));
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        frames.update_meta(|m| {
            m.ended = true;
            m.final_response = Some(text);
        });
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }
}
