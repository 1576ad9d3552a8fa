//! Embeddings codecs: the documented requests and answers of Ollama (`docs/api.md`,
//! "Generate Embeddings" and the older `/api/embeddings`) and OpenAI (the embeddings API
//! reference), base64 vectors, and the errors that name a field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use switchyard_core::{ApiFamily, EmbedResponse, KeepAlive};
use switchyard_stream::embed::openai::EncodingFormat;
use switchyard_stream::embed::{ollama, openai};

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn ollama_embed_requests_decode_and_encode() {
    let req = ollama::decode_request(
        br#"{"model":"all-minilm","input":["Why is the sky blue?","Why is the grass green?"],"truncate":false,"dimensions":2,"keep_alive":"10m","options":{"temperature":0}}"#,
    )
    .unwrap();
    assert_eq!(req.input.len(), 2);
    assert_eq!(req.truncate, Some(false));
    assert_eq!(req.dimensions, Some(2));
    assert_eq!(req.keep_alive, Some(KeepAlive::Duration("10m".into())));
    assert_eq!(req.meta.client_api, Some(ApiFamily::Ollama));
    let body = value(&ollama::encode_request(&req, "all-minilm:l6"));
    assert_eq!(
        body,
        json!({"model": "all-minilm:l6", "input": ["Why is the sky blue?", "Why is the grass green?"],
               "truncate": false, "dimensions": 2, "keep_alive": "10m",
               "options": {"temperature": 0}})
    );
    // One string, and the older endpoint's `prompt`.
    let one = ollama::decode_request(br#"{"model":"m","input":"hi"}"#).unwrap();
    assert_eq!(one.input, vec!["hi".to_owned()]);
    let legacy = ollama::decode_request(
        br#"{"model":"all-minilm","prompt":"Here is an article about llamas..."}"#,
    )
    .unwrap();
    assert_eq!(
        legacy.input,
        vec!["Here is an article about llamas...".to_owned()]
    );
    let e = ollama::decode_request(br#"{"model":"m"}"#).unwrap_err();
    assert_eq!(e.path(), Some("input"));
}

#[test]
fn ollama_embed_answers_decode_and_encode() {
    let resp = ollama::decode_response(
        br#"{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221,0.04692972,0.054916814,0.008599704,0.105441414,-0.025878139,0.12958129,0.031952348]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8}"#,
    )
    .unwrap();
    assert_eq!(resp.vectors[0].len(), 10);
    assert_eq!(resp.prompt_tokens, 8);
    let mut out = Vec::new();
    ollama::encode_response(&resp, "all-minilm", &mut out);
    let v = value(&out);
    assert_eq!(v["model"], "all-minilm");
    assert_eq!(v["prompt_eval_count"], 8);
    assert_eq!(ollama::decode_response(&out).unwrap(), resp);
    let mut out = Vec::new();
    ollama::encode_legacy_response(&resp, &mut out);
    assert_eq!(value(&out)["embedding"].as_array().unwrap().len(), 10);
    assert!(ollama::decode_response(b"not json").is_err());
}

#[test]
fn openai_requests_decode_and_encode() {
    let (req, format) = openai::decode_request(
        br#"{"input":"The food was delicious and the waiter...","model":"text-embedding-ada-002","encoding_format":"float"}"#,
    )
    .unwrap();
    assert_eq!(format, EncodingFormat::Float);
    assert_eq!(req.input.len(), 1);
    assert_eq!(req.meta.client_api, Some(ApiFamily::OpenAi));
    let (req, format) = openai::decode_request(
        br#"{"input":["a","b"],"model":"text-embedding-3-small","dimensions":256,"encoding_format":"base64","user":"u"}"#,
    )
    .unwrap();
    assert_eq!(format, EncodingFormat::Base64);
    assert_eq!(req.dimensions, Some(256));
    let body = value(&openai::encode_request(&req, "up-model"));
    assert_eq!(
        body,
        json!({"model": "up-model", "input": ["a", "b"], "dimensions": 256, "encoding_format": "float"})
    );
    let e = openai::decode_request(br#"{"input":[[1,2,3]],"model":"m"}"#).unwrap_err();
    assert_eq!(e.path(), Some("input[0]"));
    let e = openai::decode_request(br#"{"input":"x","model":"m","encoding_format":"int8"}"#)
        .unwrap_err();
    assert_eq!(e.path(), Some("encoding_format"));
    let e = openai::decode_request(br#"{"input":[],"model":"m"}"#).unwrap_err();
    assert_eq!(e.path(), Some("input"));
}

#[test]
fn openai_answers_in_float_and_base64() {
    let resp = openai::decode_response(
        br#"{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],"index":0}],"model":"text-embedding-ada-002","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
    )
    .unwrap();
    assert_eq!(
        resp.vectors,
        vec![vec![0.0023064255, -0.009327292, -0.0028842222]]
    );
    assert_eq!(resp.prompt_tokens, 8);
    let two = EmbedResponse {
        vectors: vec![vec![0.5, -1.25, 3.0], vec![0.0, 1.0, 2.0]],
        prompt_tokens: 3,
    };
    for format in [EncodingFormat::Float, EncodingFormat::Base64] {
        let mut out = Vec::new();
        openai::encode_response(&two, "m", format, &mut out);
        let v = value(&out);
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        assert_eq!(
            v["data"][0]["embedding"].is_string(),
            format == EncodingFormat::Base64
        );
        assert_eq!(openai::decode_response(&out).unwrap(), two, "{format:?}");
    }
    // base64 is the little-endian f32 bytes: 1.0 is 00 00 80 3f.
    let one = EmbedResponse {
        vectors: vec![vec![1.0]],
        prompt_tokens: 0,
    };
    let mut out = Vec::new();
    openai::encode_response(&one, "m", EncodingFormat::Base64, &mut out);
    assert_eq!(value(&out)["data"][0]["embedding"], "AACAPw==");
    // Out-of-order items are put in index order.
    let resp = openai::decode_response(
        br#"{"data":[{"index":1,"embedding":[2.0]},{"index":0,"embedding":[1.0]}]}"#,
    )
    .unwrap();
    assert_eq!(resp.vectors, vec![vec![1.0], vec![2.0]]);
    assert!(openai::decode_response(br#"{"data":[{"index":0,"embedding":"AAA"}]}"#).is_err());
}

/// Ollama's `/api/embed` `options` (Modelfile parameters, any of them) reach an Ollama
/// upstream as sent; `null` or none is no options; an OpenAI upstream has no place for
/// them; anything but an object is refused naming `options`.
#[test]
fn ollama_embed_options_pass_through_untouched() {
    let options = json!({"num_ctx": 8192, "mirostat": 2, "stop": ["x"], "temperature": 0.5});
    let body = json!({"model": "m", "input": ["a"], "options": options}).to_string();
    let req = ollama::decode_request(body.as_bytes()).unwrap();
    assert_eq!(Value::Object(req.options.clone()), options);
    assert_eq!(
        value(&ollama::encode_request(&req, "up"))["options"],
        options
    );
    let sent = value(&openai::encode_request(&req, "up"));
    assert!(sent.get("options").is_none(), "{sent}");
    for body in [
        &br#"{"model":"m","input":"a","options":null}"#[..],
        br#"{"model":"m","input":"a","options":{}}"#,
        br#"{"model":"m","input":"a"}"#,
    ] {
        let req = ollama::decode_request(body).unwrap();
        assert!(req.options.is_empty());
        let sent = value(&ollama::encode_request(&req, "up"));
        assert!(sent.get("options").is_none(), "{sent}");
    }
    let e = ollama::decode_request(br#"{"model":"m","input":"a","options":[1]}"#).unwrap_err();
    assert!(e.to_string().contains("options"), "{e}");
}
