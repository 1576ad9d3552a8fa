//! Model lifecycle on an Ollama server: what is loaded (`/api/ps`), pulling a model with
//! progress (`/api/pull`), and loading one ahead of use (`/api/generate` without a prompt).

use std::collections::VecDeque;

use serde::Deserialize;
use switchyard_core::{KeepAlive, LoadedModel, ProviderError, PullProgress, PullStream};
use switchyard_http::{Timeouts, read_body_timed, send_request};
use switchyard_stream::ndjson::{FrameError, LineFramer};

use crate::client::OllamaClient;
use crate::wire::RunningModel;

/// The longest progress line read (Ollama's are a few hundred bytes).
const MAX_PULL_LINE: usize = 64 * 1024;

impl OllamaClient {
    /// `GET /api/ps` as [`LoadedModel`]s.
    pub async fn loaded(&self) -> Result<Vec<LoadedModel>, ProviderError> {
        Ok(self.ps().await?.into_iter().map(loaded_model).collect())
    }

    /// `POST /api/pull` for `model`, streamed: the server's progress reports, ending after
    /// `success`. Each report must come within the idle timeout of the one before (a
    /// download that stalls is cut with `timeout_idle`); the first within the first-token
    /// timeout. An `{"error"}` line ends the stream with the classified error.
    pub async fn pull_progress(&self, model: &str) -> Result<PullStream, ProviderError> {
        let url = self.inner.base.join("/api/pull");
        let body = serde_json::json!({ "model": model, "stream": true }).to_string();
        let timeouts = self.inner.config.client.timeouts;
        let request = self
            .inner
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let started = send_request(request, &timeouts, &url).await?;
        let state = PullState {
            response: started.response,
            framer: LineFramer::with_max_line(MAX_PULL_LINE),
            ready: VecDeque::new(),
            idle: timeouts.idle,
            url,
            finished: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, PullState::next)))
    }

    /// Loads `model` and keeps it loaded for `keep_alive`: `POST /api/generate` with no
    /// prompt, which Ollama documents as "load a model into memory".
    pub async fn load(
        &self,
        model: &str,
        keep_alive: Option<&KeepAlive>,
    ) -> Result<(), ProviderError> {
        let url = self.inner.base.join("/api/generate");
        let mut body = serde_json::json!({ "model": model, "stream": false });
        if let Some(k) = keep_alive {
            body["keep_alive"] = serde_json::to_value(k).unwrap_or_default();
        }
        let timeouts: Timeouts = self.inner.config.client.timeouts;
        let request = self
            .inner
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let started = send_request(request, &timeouts, &url).await?;
        let mut response = started.response;
        read_body_timed(
            &mut response,
            MAX_PULL_LINE,
            &timeouts,
            started.started,
            &url,
        )
        .await
        .map(drop)
    }
}

fn loaded_model(m: RunningModel) -> LoadedModel {
    LoadedModel {
        name: m.name,
        model: m.model,
        size: m.size,
        size_vram: m.size_vram,
        expires_at: (!m.expires_at.is_empty()).then_some(m.expires_at),
        context_length: m.context_length,
        details: serde_json::to_value(&m.details).unwrap_or_default(),
    }
}

/// One line of `/api/pull`: progress, or an error.
#[derive(Deserialize)]
struct PullLine {
    #[serde(default)]
    error: Option<String>,
    #[serde(flatten)]
    progress: PullProgress,
}

/// The state of a pull's progress stream.
struct PullState {
    response: reqwest::Response,
    framer: LineFramer,
    ready: VecDeque<Result<PullProgress, ProviderError>>,
    idle: std::time::Duration,
    url: String,
    finished: bool,
}

impl PullState {
    async fn next(mut self) -> Option<(Result<PullProgress, ProviderError>, PullState)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                self.finished |= item.as_ref().map_or(true, PullProgress::is_success);
                return Some((item, self));
            }
            if self.finished {
                return None;
            }
            let chunk = tokio::time::timeout(self.idle, self.response.chunk()).await;
            let chunk = match chunk {
                Err(_) => Err(ProviderError::new(
                    switchyard_core::ErrorKind::Timeout(switchyard_core::TimeoutPhase::Idle),
                    format!(
                        "{}: no progress within {} ms",
                        self.url,
                        self.idle.as_millis()
                    ),
                )),
                Ok(Err(e)) => Err(switchyard_http::classify_transport_error(&e, &self.url)),
                Ok(Ok(None)) => Err(ProviderError::ended_early(format!(
                    "{}: the pull ended without `success`",
                    self.url
                ))),
                Ok(Ok(Some(bytes))) => Ok(bytes),
            };
            match chunk {
                Ok(bytes) => self.push(&bytes),
                Err(e) => self.ready.push_back(Err(e)),
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let ready = &mut self.ready;
        let url = &self.url;
        let framed = self.framer.push_lines(bytes, |line| {
            ready.push_back(parse_line(line, url));
            Ok::<_, FrameError>(())
        });
        if let Err(e) = framed {
            ready.push_back(Err(ProviderError::malformed(format!("{url}: {e}"))));
        }
    }
}

fn parse_line(line: &[u8], url: &str) -> Result<PullProgress, ProviderError> {
    let parsed: PullLine = serde_json::from_slice(line).map_err(|e| {
        ProviderError::malformed(format!("{url}: a progress line is not Ollama's JSON: {e}"))
    })?;
    match parsed.error {
        Some(message) => Err(switchyard_core::classify_stream_error(
            &switchyard_core::ErrorBody {
                message,
                ..Default::default()
            },
        )),
        None => Ok(parsed.progress),
    }
}
