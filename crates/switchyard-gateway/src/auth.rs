//! API-key authentication (`Authorization: Bearer <key>`, else `x-api-key: <key>`):
//! constant-time comparison, the caller's key in the request
//! extensions, 401 in the API's own shape. Tokens are never logged.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::api::{Api, ApiError};
use crate::config::ApiKey;
use crate::gateway::Shared;

/// The header Anthropic's clients send their key in.
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Who sent a request: the matching key, or `None` when no keys are configured.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Option<Arc<ApiKey>>);

/// Layer of the authenticated routes: requires a valid key when keys are configured and
/// puts the [`Caller`] into the request's extensions.
#[derive(Clone)]
pub(crate) struct AuthLayer {
    shared: Arc<Shared>,
}

impl AuthLayer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A route behind [`AuthLayer`]: a refused request is answered 401 in its API's shape
/// without reaching the route.
#[derive(Clone)]
pub(crate) struct Authenticated<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for Authenticated<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match authenticate(&self.shared, &mut request) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(refused) => Either::Right(ready(Ok(refused.into_response()))),
        }
    }
}

/// What [`Authenticated`] does before its route: puts the request's [`Caller`] into its
/// extensions, or the 401 (in the request's API shape) to answer instead.
pub(crate) fn authenticate(shared: &Shared, request: &mut Request) -> Result<(), ApiError> {
    let caller = caller(shared, request)?;
    request.extensions_mut().insert(caller);
    Ok(())
}

/// Who `request` comes from, or the 401 when keys are configured and it presents none of
/// them.
fn caller(shared: &Shared, request: &Request) -> Result<Caller, ApiError> {
    let settings = shared.settings.load();
    if settings.keys.is_empty() {
        return Ok(Caller(None));
    }
    let api = Api::for_request(request.uri().path(), request.headers());
    let Some(presented) = presented_token(request.headers()) else {
        return Err(ApiError::unauthorized(
            api,
            "missing API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`",
        ));
    };
    let Some(key) = find_key(&settings.keys, presented) else {
        return Err(ApiError::unauthorized(api, "invalid API key"));
    };
    Ok(Caller(Some(key)))
}

/// The key a request presents, if it is one of `keys`: the one authentication accepts
/// ([`presented_token`]).
pub(crate) fn presented_key(keys: &[Arc<ApiKey>], headers: &HeaderMap) -> Option<Arc<ApiKey>> {
    find_key(keys, presented_token(headers)?)
}

/// The token a request presents: its `Authorization: Bearer` token, or else its
/// `x-api-key`.
fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    bearer_token(headers).or_else(|| x_api_key(headers))
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
    fn the_presented_key_is_the_one_authentication_accepts() {
        let keys = vec![
            Arc::new(ApiKey::new("a", "token-a")),
            Arc::new(ApiKey::new("b", "token-b")),
        ];
        let mut h = HeaderMap::new();
        h.insert(X_API_KEY, HeaderValue::from_static("token-b"));
        assert_eq!(presented_key(&keys, &h).unwrap().id, "b");
        // A bearer token goes first, as in `caller`, valid or not.
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer token-a"));
        assert_eq!(presented_key(&keys, &h).unwrap().id, "a");
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert!(presented_key(&keys, &h).is_none());
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
