//! The log of requests that reached the server.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Uri};

/// One request as the server received it (recorded once its whole body was read).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/api/chat`.
    pub path: String,
    /// Query string without `?`, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as UTF-8 text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `model` field of a JSON body, if any.
    pub fn model(&self) -> Option<String> {
        self.body_json()?.get("model")?.as_str().map(str::to_owned)
    }

    /// Whether this is a chat request (`/api/chat`, `/v1/chat/completions`, `/v1/messages`,
    /// `/v1/responses` or `/v1/responses/compact`).
    pub fn is_chat(&self) -> bool {
        is_chat_path(&self.path)
    }
}

pub(crate) fn is_chat_path(path: &str) -> bool {
    matches!(
        path,
        "/api/chat"
            | "/v1/chat/completions"
            | "/v1/messages"
            | "/v1/responses"
            | "/v1/responses/compact"
    )
}

/// A request as stored: the parsed head, turned into a [`RecordedRequest`] only when a test
/// asks (so recording costs no string copies per request).
#[derive(Debug)]
pub(crate) struct RawRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl RawRequest {
    pub(crate) fn new(parts: Parts, body: Bytes) -> Self {
        RawRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        }
    }

    fn to_recorded(&self) -> RecordedRequest {
        RecordedRequest {
            method: self.method.as_str().to_owned(),
            path: self.uri.path().to_owned(),
            query: self.uri.query().map(str::to_owned),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: self.body.clone(),
        }
    }
}

/// A bounded request log with exact counters.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<RawRequest>>,
    limit: usize,
    total: AtomicUsize,
    chat: AtomicUsize,
}

impl RequestLog {
    pub(crate) fn new(limit: usize) -> Self {
        RequestLog {
            entries: Mutex::new(VecDeque::new()),
            limit,
            total: AtomicUsize::new(0),
            chat: AtomicUsize::new(0),
        }
    }

    pub(crate) fn push(&self, req: RawRequest) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if is_chat_path(req.uri.path()) {
            self.chat.fetch_add(1, Ordering::Relaxed);
        }
        if self.limit == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        while entries.len() >= self.limit {
            entries.pop_front();
        }
        entries.push_back(req);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().map(RawRequest::to_recorded).collect()
    }

    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn chat(&self) -> usize {
        self.chat.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.total.store(0, Ordering::Relaxed);
        self.chat.store(0, Ordering::Relaxed);
    }
}
