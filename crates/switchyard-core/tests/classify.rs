//! Table-driven checks: (HTTP status, body) -> kind, reason code, fallback eligibility.

use std::time::Duration;

use switchyard_core::{
    ErrorBody, ErrorKind, ProviderError, TimeoutPhase, classify_http_answer, classify_http_error,
    classify_stream_error, parse_retry_after_at, parse_retry_after_ms, retry_hint,
};

struct Case {
    status: u16,
    body: &'static str,
    kind: ErrorKind,
    reason: &'static str,
    fallback: bool,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        status: 404,
        body: r#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
        kind: ErrorKind::ModelNotFound,
        reason: "model_not_found",
        fallback: true,
        message: "model \"llama9\" not found, try pulling it first",
    },
    Case {
        status: 404,
        body: r#"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
        kind: ErrorKind::ModelNotFound,
        reason: "model_not_found",
        fallback: true,
        message: "The model `gpt-9` does not exist",
    },
    Case {
        status: 404,
        body: "404 page not found",
        kind: ErrorKind::EndpointNotFound,
        reason: "endpoint_not_found",
        fallback: true,
        message: "404 page not found",
    },
    Case {
        status: 400,
        body: r#"{"error":"registry.ollama.ai/library/gemma:2b does not support tools"}"#,
        kind: ErrorKind::InvalidRequest,
        reason: "invalid_request",
        fallback: false,
        message: "registry.ollama.ai/library/gemma:2b does not support tools",
    },
    Case {
        status: 400,
        body: r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        kind: ErrorKind::ContextOverflow,
        reason: "context_overflow",
        fallback: false,
        message: "This model's maximum context length is 8192 tokens.",
    },
    Case {
        status: 400,
        body: r#"{"error":{"message":"the request exceeds the available context size","type":"exceed_context_size_error","code":400}}"#,
        kind: ErrorKind::ContextOverflow,
        reason: "context_overflow",
        fallback: false,
        message: "the request exceeds the available context size",
    },
    Case {
        status: 401,
        body: r#"{"error":{"message":"Incorrect API key provided: sk-abc.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        kind: ErrorKind::Auth,
        reason: "auth_failed",
        fallback: true,
        message: "Incorrect API key provided: sk-abc.",
    },
    Case {
        status: 403,
        body: r#"{"error":"forbidden"}"#,
        kind: ErrorKind::Auth,
        reason: "auth_failed",
        fallback: true,
        message: "forbidden",
    },
    Case {
        status: 429,
        body: r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        kind: ErrorKind::RateLimited,
        reason: "rate_limited",
        fallback: true,
        message: "Rate limit reached",
    },
    Case {
        status: 429,
        body: r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        kind: ErrorKind::QuotaExhausted,
        reason: "quota_exhausted",
        fallback: true,
        message: "You exceeded your current quota",
    },
    Case {
        status: 503,
        body: r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
        kind: ErrorKind::Overloaded,
        reason: "overloaded",
        fallback: true,
        message: "server busy, please try again.  maximum pending requests exceeded",
    },
    Case {
        status: 529,
        body: r#"{"error":{"message":"Overloaded","type":"overloaded_error"}}"#,
        kind: ErrorKind::Overloaded,
        reason: "overloaded",
        fallback: true,
        message: "Overloaded",
    },
    Case {
        status: 500,
        body: r#"{"error":"llama runner process has terminated: signal: killed"}"#,
        kind: ErrorKind::Upstream,
        reason: "upstream_error",
        fallback: true,
        message: "llama runner process has terminated: signal: killed",
    },
    Case {
        status: 502,
        body: "<html><body>Bad Gateway</body></html>",
        kind: ErrorKind::Upstream,
        reason: "upstream_error",
        fallback: true,
        message: "<html><body>Bad Gateway</body></html>",
    },
    Case {
        status: 422,
        body: r#"{"error":{"message":"unknown field","type":"BadRequestError","code":422}}"#,
        kind: ErrorKind::InvalidRequest,
        reason: "invalid_request",
        fallback: false,
        message: "unknown field",
    },
    Case {
        status: 500,
        body: "",
        kind: ErrorKind::Upstream,
        reason: "upstream_error",
        fallback: true,
        message: "upstream answered HTTP 500 with no message",
    },
];

#[test]
fn http_errors_are_classified() {
    for case in CASES {
        let err = classify_http_error(case.status, case.body.as_bytes(), None);
        assert_eq!(
            err.kind(),
            case.kind,
            "status {} body {}",
            case.status,
            case.body
        );
        assert_eq!(
            err.reason_code(),
            case.reason,
            "status {} body {}",
            case.status,
            case.body
        );
        assert_eq!(
            err.fallback_eligible(),
            case.fallback,
            "status {}",
            case.status
        );
        assert_eq!(err.message(), case.message);
        assert_eq!(err.status(), Some(case.status));
    }
}

#[test]
fn upstream_code_and_retry_after_are_kept() {
    let err = classify_http_error(
        429,
        br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
        Some("7"),
    );
    assert_eq!(err.upstream_code(), Some("rate_limit_exceeded"));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    let err = classify_http_error(429, b"{}", Some("1.5"));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
    let err = classify_http_error(429, b"{}", Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    assert_eq!(err.retry_after(), None);
}

#[test]
fn integer_codes_are_rendered() {
    let err = classify_http_error(400, br#"{"error":{"message":"bad","code":400}}"#, None);
    assert_eq!(err.upstream_code(), Some("400"));
}

#[test]
fn long_non_json_bodies_are_cut_on_a_char_boundary() {
    let body = "é".repeat(1000);
    let err = classify_http_error(502, body.as_bytes(), None);
    assert!(err.message().len() <= 512);
    assert!(err.message().starts_with('é'));
}

#[test]
fn stream_errors_are_classified_by_message() {
    let cases = [
        (
            "an error was encountered while running the model",
            None,
            ErrorKind::Upstream,
        ),
        ("model \"x\" not found", None, ErrorKind::ModelNotFound),
        (
            "too many tokens for the context",
            None,
            ErrorKind::ContextOverflow,
        ),
        ("slow", Some("rate_limit_exceeded"), ErrorKind::RateLimited),
        ("pay", Some("insufficient_quota"), ErrorKind::QuotaExhausted),
    ];
    for (message, code, kind) in cases {
        let body = ErrorBody {
            message: message.to_owned(),
            error_type: None,
            code: code.map(str::to_owned),
        };
        let err = classify_stream_error(&body);
        assert_eq!(err.kind(), kind, "{message}");
        assert_eq!(err.message(), message);
    }
}

/// Every kind has a distinct, stable, snake_case reason code, and the eligibility rules hold.
#[test]
fn every_kind_has_a_stable_reason_code() {
    let expected: &[(ErrorKind, &str, bool, bool)] = &[
        // kind, code, fallback eligible, retryable on the same target
        (ErrorKind::ConnectRefused, "connect_refused", true, false),
        (ErrorKind::Dns, "dns_failure", true, false),
        (ErrorKind::Tls, "tls_failure", true, false),
        (ErrorKind::Connect, "connect_failed", true, true),
        (
            ErrorKind::Timeout(TimeoutPhase::Connect),
            "timeout_connect",
            true,
            true,
        ),
        (
            ErrorKind::Timeout(TimeoutPhase::FirstToken),
            "timeout_first_token",
            true,
            false,
        ),
        (
            ErrorKind::Timeout(TimeoutPhase::Idle),
            "timeout_idle",
            true,
            false,
        ),
        (
            ErrorKind::Timeout(TimeoutPhase::Total),
            "timeout_total",
            true,
            false,
        ),
        (
            ErrorKind::Timeout(TimeoutPhase::Queue),
            "timeout_queue",
            true,
            false,
        ),
        (ErrorKind::Auth, "auth_failed", true, false),
        (ErrorKind::RateLimited, "rate_limited", true, true),
        (ErrorKind::QuotaExhausted, "quota_exhausted", true, false),
        (ErrorKind::Overloaded, "overloaded", true, true),
        (ErrorKind::ModelNotFound, "model_not_found", true, false),
        (
            ErrorKind::EndpointNotFound,
            "endpoint_not_found",
            true,
            false,
        ),
        (ErrorKind::ContextOverflow, "context_overflow", false, false),
        (ErrorKind::InvalidRequest, "invalid_request", false, false),
        (ErrorKind::Upstream, "upstream_error", true, true),
        (ErrorKind::MalformedStream, "malformed_stream", true, false),
        (
            ErrorKind::StreamEndedEarly,
            "stream_ended_early",
            true,
            true,
        ),
        (ErrorKind::Cancelled, "cancelled", false, false),
        (ErrorKind::PolicyBlocked, "policy_blocked", false, false),
        (ErrorKind::BudgetExhausted, "budget_exhausted", true, false),
        (ErrorKind::QueueFull, "queue_full", true, false),
        (ErrorKind::Internal, "internal_error", false, false),
        (ErrorKind::Unsupported, "unsupported", true, false),
    ];
    assert_eq!(expected.len(), ErrorKind::ALL.len());
    let mut seen = std::collections::HashSet::new();
    for (kind, code, fallback, retry) in expected {
        assert!(ErrorKind::ALL.contains(kind), "{kind:?} missing from ALL");
        assert_eq!(kind.reason_code(), *code);
        assert_eq!(kind.fallback_eligible(), *fallback, "{code}");
        assert_eq!(kind.retryable(), *retry, "{code}");
        assert!(seen.insert(*code), "duplicate code {code}");
        assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        let err = ProviderError::new(*kind, "m");
        assert_eq!(err.reason_code(), *code);
        assert_eq!(err.to_string(), format!("{code}: m"));
    }
}

#[test]
fn source_chain_is_kept() {
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    let err = ProviderError::new(ErrorKind::ConnectRefused, "connecting to 127.0.0.1:1")
        .with_source(io)
        .context("local");
    assert_eq!(err.message(), "local: connecting to 127.0.0.1:1");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("refused"));
}

/// 2015-10-21T07:28:00Z, the instant `Wed, 21 Oct 2015 07:28:00 GMT` names.
fn at_date() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480)
}

#[test]
fn retry_after_seconds_form() {
    let now = at_date();
    assert_eq!(
        parse_retry_after_at("12", now),
        Some(Duration::from_secs(12))
    );
    assert_eq!(
        parse_retry_after_at(" 1.5 ", now),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(parse_retry_after_at("-3", now), None);
    assert_eq!(parse_retry_after_at("soon", now), None);
}

#[test]
fn retry_after_ms_form() {
    assert_eq!(
        parse_retry_after_ms("250"),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        parse_retry_after_ms(" 1.5 "),
        Some(Duration::from_micros(1500))
    );
    assert_eq!(parse_retry_after_ms("0"), Some(Duration::ZERO));
    for bad in ["-1", "NaN", "inf", "1e13", "", "ten"] {
        assert_eq!(parse_retry_after_ms(bad), None, "{bad:?}");
    }
}

#[test]
fn retry_after_http_date_form_is_measured_from_now() {
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    let before = at_date() - Duration::from_secs(90);
    assert_eq!(
        parse_retry_after_at(date, before),
        Some(Duration::from_secs(90))
    );
    // A date in the past gives zero, not an error.
    let after = at_date() + Duration::from_secs(5);
    assert_eq!(parse_retry_after_at(date, after), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after_at("Wed, 32 Oct 2015 07:28:00 GMT", before),
        None
    );
}

#[test]
fn retry_hint_prefers_milliseconds_and_falls_back_to_retry_after() {
    let now = at_date() - Duration::from_secs(60);
    let both = [("retry-after", "9"), ("retry-after-ms", "1200")];
    assert_eq!(retry_hint(&both, now), Some(Duration::from_millis(1200)));
    let unusable_ms = [("retry-after-ms", "-5"), ("Retry-After", "9")];
    assert_eq!(retry_hint(&unusable_ms, now), Some(Duration::from_secs(9)));
    let date = [("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")];
    assert_eq!(retry_hint(&date, now), Some(Duration::from_secs(60)));
    assert_eq!(retry_hint(&[("content-type", "text/plain")], now), None);
}

#[test]
fn http_answers_keep_retry_hint_and_sorted_rate_limit_headers() {
    let now = at_date();
    let headers = [
        ("x-ratelimit-remaining-tokens", "0"),
        ("retry-after", "3"),
        ("X-RateLimit-Limit-Tokens", "1000"),
        ("content-type", "application/json"),
    ];
    let body = br#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#;
    let err = classify_http_answer(429, body, &headers, now);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(
        err.message(),
        "[X-RateLimit-Limit-Tokens=1000, x-ratelimit-remaining-tokens=0]: slow down"
    );
    // Without headers the answer is classified exactly as status and body say.
    let bare = classify_http_answer(429, body, &[], now);
    assert_eq!(
        bare.message(),
        classify_http_error(429, body, None).message()
    );
    assert_eq!(bare.retry_after(), None);
}
