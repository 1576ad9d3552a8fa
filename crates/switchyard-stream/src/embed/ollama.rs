//! Ollama's `POST /api/embed` (`input`: a string or a list) and the older
//! `POST /api/embeddings` (`prompt`: one string, answered with one `embedding`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_core::{ApiFamily, EmbedRequest, EmbedResponse, KeepAlive, ProviderError};

use super::{EmbedEndpoint, MAX_INPUTS, malformed};
use crate::RequestError;
use crate::request_error::{OneOrMany, decode_body, nullable};

/// `POST /api/embed` on an Ollama upstream, with this module's codec.
pub const ENDPOINT: EmbedEndpoint = EmbedEndpoint {
    path: "/api/embed",
    encode_request,
    decode_response,
};

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    #[serde(default)]
    input: Option<OneOrMany>,
    /// `/api/embeddings`.
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    keep_alive: Option<KeepAlive>,
    #[serde(default, deserialize_with = "nullable")]
    options: Map<String, Value>,
}

/// Decodes an `/api/embed` or `/api/embeddings` body (`input` or `prompt`); `options` is
/// kept as sent, for an Ollama upstream. One empty string (`input` or `prompt`) is no input
/// at all; a list keeps every item in place, empty ones included.
pub fn decode_request(body: &[u8]) -> Result<EmbedRequest, RequestError> {
    let wire: WireRequest = decode_body(body)?;
    // As Ollama (`EmbedHandler`, `EmbeddingsHandler`): one empty string is not embedded
    // (an empty request only loads the model, and its answer has no vectors), but a list
    // is kept item by item, empty ones included, so that `embeddings[i]` is the vector of
    // `input[i]`.
    let input = match (wire.input, wire.prompt) {
        (Some(OneOrMany::One(text)), _) | (None, Some(text)) if text.is_empty() => Vec::new(),
        (Some(i), _) => i.into_vec(),
        (None, Some(p)) => vec![p],
        (None, None) => return Err(RequestError::field("input", "input is required")),
    };
    if input.len() > MAX_INPUTS {
        return Err(RequestError::field(
            "input",
            format!("at most {MAX_INPUTS} inputs per request"),
        ));
    }
    let mut req = EmbedRequest {
        model: wire.model,
        input,
        dimensions: wire.dimensions,
        truncate: wire.truncate,
        keep_alive: wire.keep_alive,
        options: wire.options,
        ..EmbedRequest::default()
    };
    req.meta.client_api = Some(ApiFamily::Ollama);
    Ok(req)
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<&'a KeepAlive>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    options: &'a Map<String, Value>,
}

/// Encodes `req` as an `/api/embed` body for the model `model`, with the client's
/// `options` untouched.
pub fn encode_request(req: &EmbedRequest, model: &str) -> Vec<u8> {
    serde_json::to_vec(&OutRequest {
        model,
        input: &req.input,
        truncate: req.truncate,
        dimensions: req.dimensions,
        keep_alive: req.keep_alive.as_ref(),
        options: &req.options,
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    prompt_eval_count: u32,
}

/// Decodes an `/api/embed` answer.
pub fn decode_response(body: &[u8]) -> Result<EmbedResponse, ProviderError> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|e| malformed("Ollama", &e))?;
    Ok(EmbedResponse {
        vectors: wire.embeddings,
        prompt_tokens: wire.prompt_eval_count,
    })
}

#[derive(Serialize)]
struct OutResponse<'a> {
    model: &'a str,
    embeddings: &'a [Vec<f32>],
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u32,
}

/// Appends the `/api/embed` answer: `{"model","embeddings":[[...]],"prompt_eval_count"}`.
pub fn encode_response(resp: &EmbedResponse, model: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(
        out,
        &OutResponse {
            model,
            embeddings: &resp.vectors,
            total_duration: 0,
            load_duration: 0,
            prompt_eval_count: resp.prompt_tokens,
        },
    );
}

/// Appends the older `/api/embeddings` answer: `{"embedding":[...]}` (the first vector).
pub fn encode_legacy_response(resp: &EmbedResponse, out: &mut Vec<u8>) {
    #[derive(Serialize)]
    struct Legacy<'a> {
        embedding: &'a [f32],
    }
    let embedding = resp.vectors.first().map_or(&[][..], Vec::as_slice);
    let _ = serde_json::to_writer(out, &Legacy { embedding });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input_of(body: &str) -> Vec<String> {
        decode_request(body.as_bytes()).unwrap().input
    }

    #[test]
    fn one_empty_string_is_no_input_but_a_list_keeps_every_item_in_place() {
        assert!(input_of(r#"{"model":"m","input":""}"#).is_empty());
        assert!(input_of(r#"{"model":"m","prompt":""}"#).is_empty());
        assert_eq!(input_of(r#"{"model":"m","input":"a"}"#), ["a"]);
        assert_eq!(
            input_of(r#"{"model":"m","input":["alpha","","gamma"]}"#),
            ["alpha", "", "gamma"]
        );
        assert_eq!(input_of(r#"{"model":"m","input":[""]}"#), [""]);
        assert!(input_of(r#"{"model":"m","input":[]}"#).is_empty());
    }

    #[test]
    fn the_list_goes_to_an_ollama_upstream_as_sent() {
        let req = decode_request(br#"{"model":"m","input":["a","","c"]}"#).unwrap();
        let body: Value = serde_json::from_slice(&encode_request(&req, "up")).unwrap();
        assert_eq!(body["input"], serde_json::json!(["a", "", "c"]));
    }
}
