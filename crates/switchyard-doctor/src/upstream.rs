//! The real clients (`switchyard-ollama`, `switchyard-openai`, `switchyard-anthropic`) as
//! the doctor uses them:
//! built from a probe with the doctor's own limits, text tool-call recovery off (the doctor
//! wants to see what the server really sends).

use std::time::Duration;

use switchyard_anthropic::AnthropicClient;
use switchyard_core::{
    Capabilities, ChatRequest, ChatResponse, ModelInfo, Provider, ProviderError,
};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{MaxTokensField, OpenAiClient, OpenAiConfig, TextRecovery};

use crate::finding::Finding;
use crate::input::{DoctorOptions, ProbeApi, ProviderProbe};

/// What `/api/show` told about one model.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelDetails {
    pub(crate) capabilities: Option<Capabilities>,
    pub(crate) context_window: Option<u64>,
    /// Whether the daemon runs the model on another host (one of Ollama's cloud models:
    /// `remote_host` / `remote_model` in `/api/show`, or a `cloud` / `*-cloud` tag).
    pub(crate) remote: bool,
}

/// A client for one provider.
#[derive(Debug, Clone)]
pub(crate) enum Upstream {
    Ollama(OllamaClient),
    OpenAi(OpenAiClient),
    Anthropic(AnthropicClient),
}

impl Upstream {
    /// Builds the client for `probe` at `base_url` (the native root for Ollama). Generation
    /// phases get the doctor's generous limit: the doctor measures against the configured
    /// timeouts instead of being cut by them.
    pub(crate) fn build(
        probe: &ProviderProbe,
        base_url: &str,
        options: &DoctorOptions,
    ) -> Result<Upstream, Finding> {
        Self::build_for(probe.api, probe, base_url, options)
    }

    /// Builds a native Ollama client at `root` for a provider that uses Ollama's `/v1`
    /// layer, to read what `/api/show` says about its models.
    pub(crate) fn native_ollama(
        probe: &ProviderProbe,
        root: &str,
        options: &DoctorOptions,
    ) -> Result<Upstream, Finding> {
        Self::build_for(ProbeApi::Ollama, probe, root, options)
    }

    fn build_for(
        api: ProbeApi,
        probe: &ProviderProbe,
        base_url: &str,
        options: &DoctorOptions,
    ) -> Result<Upstream, Finding> {
        let mut client = probe.client.clone();
        client.timeouts.connect = client.timeouts.connect.min(options.connect_timeout);
        client.timeouts.first_token = options.generation_timeout;
        client.timeouts.idle = options.generation_timeout;
        client.timeouts.total = Some(options.generation_timeout);
        let error = |e: &dyn std::fmt::Display| Finding::ClientConfig {
            error: e.to_string(),
        };
        match api {
            ProbeApi::Ollama => {
                let mut config = OllamaConfig::new(base_url);
                config.client = client;
                config.locality = probe.locality;
                config.text_tool_recovery = false;
                config.discovery.request_timeout = options.request_timeout;
                OllamaClient::new(config)
                    .map(Upstream::Ollama)
                    .map_err(|e| error(&e))
            }
            ProbeApi::OpenAi => {
                let mut config = OpenAiConfig::new(base_url);
                config.client = client;
                config.locality = probe.locality;
                config.text_tool_recovery = TextRecovery::Off;
                // As configured; else OpenAI's own API gets `max_completion_tokens` (its
                // reasoning models refuse `max_tokens`).
                config.max_tokens_field = match probe.max_tokens_field {
                    Some(field) => field,
                    None if is_openai_host(base_url) => MaxTokensField::MaxCompletionTokens,
                    None => MaxTokensField::MaxTokens,
                };
                config.num_ctx = probe.num_ctx;
                OpenAiClient::new(config)
                    .map(Upstream::OpenAi)
                    .map_err(|e| error(&e))
            }
            ProbeApi::Anthropic => {
                let config = crate::rungs::anthropic::client_config(probe, base_url, client);
                AnthropicClient::new(config)
                    .map(Upstream::Anthropic)
                    .map_err(|e| error(&e))
            }
        }
    }

    /// The client as a [`Provider`], for generations.
    pub(crate) fn provider(&self) -> &dyn Provider {
        match self {
            Upstream::Ollama(c) => c,
            Upstream::OpenAi(c) => c,
            Upstream::Anthropic(c) => c,
        }
    }

    /// A whole (non-streamed) answer: the upstream is asked with `stream: false`.
    pub(crate) async fn complete(
        &self,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        match self {
            Upstream::Ollama(c) => c.complete(request).await,
            Upstream::OpenAi(c) => c.complete(request).await,
            Upstream::Anthropic(c) => c.complete(request).await,
        }
    }

    /// Ollama's `/api/version`.
    pub(crate) async fn version(&self) -> Result<Option<String>, ProviderError> {
        match self {
            Upstream::Ollama(c) => c.version().await.map(Some),
            Upstream::OpenAi(_) | Upstream::Anthropic(_) => Ok(None),
        }
    }

    /// The server's model names (`/api/tags` or `/v1/models`, Anthropic's with `x-api-key`
    /// and `anthropic-version`).
    pub(crate) async fn model_names(&self) -> Result<Vec<String>, ProviderError> {
        match self {
            Upstream::Ollama(c) => Ok(c.tags().await?.into_iter().map(|t| t.name).collect()),
            Upstream::OpenAi(c) => Ok(c
                .list_models()
                .await?
                .into_iter()
                .map(|m: ModelInfo| m.id)
                .collect()),
            Upstream::Anthropic(c) => {
                Ok(c.list_models().await?.into_iter().map(|m| m.id).collect())
            }
        }
    }

    /// Ollama's `/api/show` for one model (nothing for other APIs).
    pub(crate) async fn details(&self, model: &str) -> Result<Option<ModelDetails>, ProviderError> {
        match self {
            Upstream::Ollama(c) => {
                let show = c.show(model).await?;
                Ok(Some(ModelDetails {
                    capabilities: show.capabilities(),
                    context_window: show.context_window(),
                    remote: show.remote.is_remote() || cloud_name(model),
                }))
            }
            Upstream::OpenAi(_) | Upstream::Anthropic(_) => Ok(None),
        }
    }

    /// Whether Ollama reports `model` loaded (`/api/ps`); `None` when unknown.
    pub(crate) async fn is_loaded(&self, model: &str) -> Option<bool> {
        match self {
            Upstream::Ollama(c) => {
                let running = c.ps().await.ok()?;
                Some(
                    running
                        .iter()
                        .any(|m| same_model(&m.name, model) || same_model(&m.model, model)),
                )
            }
            Upstream::OpenAi(_) | Upstream::Anthropic(_) => None,
        }
    }
}

/// Whether the base URL is OpenAI's own API.
fn is_openai_host(base_url: &str) -> bool {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| h == "api.openai.com" || h.ends_with(".openai.com"))
        })
        .unwrap_or(false)
}

/// Whether two Ollama model names mean the same model (`qwen2.5` is `qwen2.5:latest`).
pub(crate) fn same_model(a: &str, b: &str) -> bool {
    fn full(n: &str) -> std::borrow::Cow<'_, str> {
        let last = n.rsplit('/').next().unwrap_or(n);
        if last.contains(':') {
            n.into()
        } else {
            format!("{n}:latest").into()
        }
    }
    full(a) == full(b)
}

/// Whether an Ollama model name has a `cloud` tag or one ending in `-cloud`
/// (`gpt-oss:120b-cloud`), as Ollama names the models it runs in its cloud.
pub(crate) fn cloud_name(model: &str) -> bool {
    let last = model.rsplit_once(':').map_or(model, |(_, tag)| tag);
    last == "cloud" || last.ends_with("-cloud")
}

/// The longest a generation may run before the doctor gives up on it.
pub(crate) fn generation_limit(options: &DoctorOptions) -> Duration {
    options.generation_timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_tag_is_implied() {
        assert!(same_model("qwen2.5", "qwen2.5:latest"));
        assert!(same_model("qwen2.5:7b", "qwen2.5:7b"));
        assert!(!same_model("qwen2.5:7b", "qwen2.5"));
        assert!(same_model(
            "registry.local:5000/library/m",
            "registry.local:5000/library/m:latest"
        ));
    }

    #[test]
    fn cloud_tags_are_recognised() {
        assert!(cloud_name("gpt-oss:120b-cloud"));
        assert!(cloud_name("kimi-k2:cloud"));
        assert!(cloud_name("deepseek-v3.1-cloud"));
        assert!(!cloud_name("qwen2.5:7b"));
        assert!(!cloud_name("cloudy:7b"));
    }
}
