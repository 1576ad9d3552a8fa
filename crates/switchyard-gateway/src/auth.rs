//! Bearer-key authentication: constant-time comparison, the caller's key in the request
//! extensions, 401 in the API's own shape. Tokens are never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use crate::api::{Api, ApiError};
use crate::config::ApiKey;
use crate::gateway::Shared;

/// The header Anthropic's clients send their key in.
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Who sent a request: the matching key, or `None` when no keys are configured.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Option<Arc<ApiKey>>);

/// Middleware: requires a valid bearer key when keys are configured.
pub(crate) async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let settings = shared.settings.load();
    if settings.keys.is_empty() {
        request.extensions_mut().insert(Caller(None));
        return next.run(request).await;
    }
    let api = Api::for_request(request.uri().path(), request.headers());
    let presented = bearer_token(request.headers()).or_else(|| x_api_key(request.headers()));
    let Some(presented) = presented else {
        return ApiError::unauthorized(
            api,
            "missing API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`",
        )
        .into_response();
    };
    let Some(key) = find_key(&settings.keys, presented) else {
        return ApiError::unauthorized(api, "invalid API key").into_response();
    };
    request.extensions_mut().insert(Caller(Some(key)));
    next.run(request).await
}

/// The key a request presents, if it is one of `keys`.
pub(crate) fn presented_key(keys: &[Arc<ApiKey>], headers: &HeaderMap) -> Option<Arc<ApiKey>> {
    find_key(keys, bearer_token(headers)?)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty() && rest.first().is_some_and(|b| *b == b' ')).then_some(token)
}

/// The token of an `x-api-key` header (Anthropic's clients send the key that way).
fn x_api_key(headers: &HeaderMap) -> Option<&[u8]> {
    let token = headers.get(X_API_KEY)?.as_bytes().trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The key whose token equals `presented`. Every key is compared, each in constant time,
/// so the time taken says nothing about how much of a token matched.
fn find_key(keys: &[Arc<ApiKey>], presented: &[u8]) -> Option<Arc<ApiKey>> {
    let mut found = None;
    for key in keys {
        let token = key.token.as_bytes();
        let equal: bool = token.ct_eq(presented).into();
        if equal && !token.is_empty() && found.is_none() {
            found = Some(Arc::clone(key));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn reads_bearer_tokens() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&headers("Bearerabc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn finds_the_matching_key_only() {
        let keys = vec![
            Arc::new(ApiKey::new("a", "token-a")),
            Arc::new(ApiKey::new("empty", "")),
            Arc::new(ApiKey::new("b", "token-b")),
        ];
        assert_eq!(find_key(&keys, b"token-b").unwrap().id, "b");
        assert!(find_key(&keys, b"token-").is_none());
        assert!(find_key(&keys, b"").is_none());
    }
}
