//! Chat log probabilities: the gateway carries none back (`choices[].logprobs` is always
//! `null`), so a chat asking for them is refused naming the field, as `/v1/completions`
//! refuses its `logprobs`, instead of a 200 that breaks `.logprobs.content` in the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use switchyard_stream::openai::request as openai;

fn chat_with(field: &str) -> String {
    format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],{field}}}"#)
}

#[test]
fn asking_for_logprobs_is_refused_by_name() {
    for (field, named) in [
        (r#""logprobs":true"#, "logprobs"),
        (r#""logprobs":true,"top_logprobs":3"#, "logprobs"),
        (r#""top_logprobs":0"#, "top_logprobs"),
        (r#""logprobs":false,"top_logprobs":2"#, "top_logprobs"),
        (r#""logprobs":"yes""#, "logprobs"),
    ] {
        let body = chat_with(field);
        let e = openai::decode_request(body.as_bytes()).unwrap_err();
        assert_eq!(e.reason_code(), "unsupported", "{body}: {e}");
        assert_eq!(e.path(), Some(named), "{body}: {e}");
        assert!(e.to_string().contains(named), "{body}: {e}");
    }
}

#[test]
fn not_asking_for_logprobs_passes() {
    for field in [
        r#""logprobs":false"#,
        r#""logprobs":null"#,
        r#""logprobs":false,"top_logprobs":null"#,
        r#""user":"u""#,
    ] {
        let body = chat_with(field);
        let req = openai::decode_request(body.as_bytes()).unwrap();
        assert_eq!(req.model, "m", "{body}");
    }
}
