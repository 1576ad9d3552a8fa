//! OpenAI's `POST /v1/embeddings`: `input` a string or a list of strings, `dimensions`,
//! `encoding_format` `float` (default) or `base64` (little-endian `f32`s).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{ApiFamily, EmbedRequest, EmbedResponse, ProviderError};

use super::{EmbedEndpoint, MAX_INPUTS, malformed};
use crate::RequestError;
use crate::request_error::decode_body;

/// `POST {base}/embeddings` on an OpenAI-compatible upstream (its base ends in `/v1`), with
/// this module's codec.
pub const ENDPOINT: EmbedEndpoint = EmbedEndpoint {
    path: "/embeddings",
    encode_request,
    decode_response,
};

/// How the client wants vectors written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncodingFormat {
    /// JSON numbers.
    #[default]
    Float,
    /// Base64 of the little-endian `f32` bytes.
    Base64,
}

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    input: Value,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    encoding_format: Option<String>,
}

/// Decodes a `/v1/embeddings` body; the vectors' encoding the client asked for. Token
/// arrays as input are refused (`input`): the gateway cannot know the upstream's tokenizer.
/// An empty string, alone or in the list, is refused too (`input`; OpenAI: the input
/// "cannot be an empty string").
pub fn decode_request(body: &[u8]) -> Result<(EmbedRequest, EncodingFormat), RequestError> {
    let wire: WireRequest = decode_body(body)?;
    let input = match wire.input {
        Value::String(s) if s.is_empty() => {
            return Err(RequestError::field("input", "cannot be an empty string"));
        }
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if s.is_empty() => Err(RequestError::field(
                    format!("input[{i}]"),
                    "cannot be an empty string",
                )),
                Value::String(s) => Ok(s),
                _ => Err(RequestError::unsupported(
                    format!("input[{i}]"),
                    "only strings are accepted as input, not token arrays",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(RequestError::field(
                "input",
                "expected a string or a list of strings",
            ));
        }
    };
    if input.is_empty() || input.len() > MAX_INPUTS {
        return Err(RequestError::field(
            "input",
            format!("between 1 and {MAX_INPUTS} inputs per request"),
        ));
    }
    let format = match wire.encoding_format.as_deref() {
        None | Some("float") => EncodingFormat::Float,
        Some("base64") => EncodingFormat::Base64,
        Some(other) => {
            return Err(RequestError::field(
                "encoding_format",
                format!("expected \"float\" or \"base64\", got {other:?}"),
            ));
        }
    };
    let mut req = EmbedRequest {
        model: wire.model,
        input,
        dimensions: wire.dimensions,
        ..EmbedRequest::default()
    };
    req.meta.client_api = Some(ApiFamily::OpenAi);
    Ok((req, format))
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    encoding_format: &'static str,
}

/// Checks that every input of `req` can be sent to an OpenAI-compatible upstream: OpenAI
/// refuses an empty string ("cannot be an empty string"), so an empty item (an Ollama
/// client's list keeps them in place) is refused naming `input[i]`, rather than left out,
/// which would shift every later vector onto the wrong input. A request with no input at
/// all is the caller's business (it embeds nothing).
pub fn check_request(req: &EmbedRequest) -> Result<(), RequestError> {
    match req.input.iter().position(String::is_empty) {
        None => Ok(()),
        Some(i) => Err(RequestError::field(
            format!("input[{i}]"),
            "an empty string cannot be embedded by an OpenAI-compatible upstream (OpenAI \
             refuses it); leave the item out or give it text",
        )),
    }
}

/// Encodes `req` as a `/v1/embeddings` body for `model` (always asking for floats).
pub fn encode_request(req: &EmbedRequest, model: &str) -> Vec<u8> {
    serde_json::to_vec(&OutRequest {
        model,
        input: &req.input,
        dimensions: req.dimensions,
        encoding_format: "float",
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct WireResponse {
    data: Vec<WireItem>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireItem {
    #[serde(default)]
    index: usize,
    embedding: Value,
}

#[derive(Deserialize, Serialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    total_tokens: u32,
}

/// Decodes a `/v1/embeddings` answer (float or base64 vectors, put in `index` order).
pub fn decode_response(body: &[u8]) -> Result<EmbedResponse, ProviderError> {
    let mut wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| malformed("OpenAI", &e))?;
    wire.data.sort_by_key(|d| d.index);
    let vectors = wire
        .data
        .into_iter()
        .map(|d| match d.embedding {
            Value::String(b64) => from_base64(&b64),
            v => serde_json::from_value(v).map_err(|e| malformed("OpenAI", &e)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmbedResponse {
        vectors,
        prompt_tokens: wire.usage.map_or(0, |u| u.prompt_tokens),
    })
}

fn from_base64(text: &str) -> Result<Vec<f32>, ProviderError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| ProviderError::malformed(format!("a base64 embedding: {e}")))?;
    if bytes.len() % 4 != 0 {
        return Err(ProviderError::malformed(
            "a base64 embedding is not a whole number of f32s",
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn to_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

#[derive(Serialize)]
struct OutItem {
    object: &'static str,
    index: usize,
    embedding: Value,
}

#[derive(Serialize)]
struct OutResponse<'a> {
    object: &'static str,
    data: Vec<OutItem>,
    model: &'a str,
    usage: WireUsage,
}

/// Appends the `/v1/embeddings` answer with vectors as `format` says.
pub fn encode_response(
    resp: &EmbedResponse,
    model: &str,
    format: EncodingFormat,
    out: &mut Vec<u8>,
) {
    let data = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| OutItem {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => Value::from(v.clone()),
                EncodingFormat::Base64 => Value::String(to_base64(v)),
            },
        })
        .collect();
    let _ = serde_json::to_writer(
        out,
        &OutResponse {
            object: "list",
            data,
            model,
            usage: WireUsage {
                prompt_tokens: resp.prompt_tokens,
                total_tokens: resp.prompt_tokens,
            },
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: &[&str]) -> EmbedRequest {
        EmbedRequest {
            model: "m".to_owned(),
            input: input.iter().map(|s| (*s).to_owned()).collect(),
            ..EmbedRequest::default()
        }
    }

    #[test]
    fn an_empty_item_is_refused_naming_its_index() {
        assert!(check_request(&request(&["a", "b"])).is_ok());
        assert!(check_request(&request(&[])).is_ok());
        let e = check_request(&request(&["alpha", "", "gamma"])).unwrap_err();
        assert_eq!(e.path(), Some("input[1]"), "{e}");
        assert!(e.to_string().contains("empty string"), "{e}");
    }

    #[test]
    fn vectors_are_put_back_in_index_order() {
        let body = br#"{"data":[{"index":1,"embedding":[2.0]},{"index":0,"embedding":[1.0]}]}"#;
        let resp = decode_response(body).unwrap();
        assert_eq!(resp.vectors, vec![vec![1.0], vec![2.0]]);
    }
}
