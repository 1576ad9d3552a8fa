//! Embeddings codecs (sans-IO): Ollama's `/api/embed` and older `/api/embeddings`, and
//! OpenAI's `/v1/embeddings` (float or base64 vectors). Each side decodes a client's
//! request into an [`EmbedRequest`](switchyard_core::EmbedRequest), encodes one for an
//! upstream, decodes the upstream's answer into an
//! [`EmbedResponse`](switchyard_core::EmbedResponse) and encodes that for the client.
//!
//! ```
//! use switchyard_stream::embed::{ollama, openai};
//!
//! let req = ollama::decode_request(br#"{"model":"nomic-embed-text","input":"hi"}"#)?;
//! assert_eq!(req.input, vec!["hi".to_owned()]);
//! let body = openai::encode_request(&req, "text-embedding-3-small");
//! assert!(String::from_utf8(body).unwrap().contains(r#""input":["hi"]"#));
//! # Ok::<(), switchyard_stream::RequestError>(())
//! ```

pub mod ollama;
pub mod openai;

use switchyard_core::{EmbedRequest, EmbedResponse, ProviderError};

/// The most inputs one request may carry (OpenAI's limit is 2048).
pub const MAX_INPUTS: usize = 2048;

/// An upstream API's embeddings endpoint, without I/O: where it is below a client's base
/// URL and how its request and answer are coded ([`ollama::ENDPOINT`], [`openai::ENDPOINT`]).
#[derive(Debug, Clone, Copy)]
pub struct EmbedEndpoint {
    /// The path below the client's base URL (`/api/embed`; `/embeddings` after `/v1`).
    pub path: &'static str,
    /// Encodes a request for the upstream model named.
    pub encode_request: fn(&EmbedRequest, &str) -> Vec<u8>,
    /// Decodes the upstream's whole answer.
    pub decode_response: fn(&[u8]) -> Result<EmbedResponse, ProviderError>,
}

/// A malformed upstream answer.
fn malformed(api: &str, e: &serde_json::Error) -> ProviderError {
    ProviderError::malformed(format!("the {api} embeddings answer is not valid: {e}"))
}
