//! What a provider offers: models, their capabilities, where they run, what they cost.

use serde::{Deserialize, Serialize};

use crate::event::Usage;

/// Where a provider runs, as far as privacy is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locality {
    /// On this host.
    Local,
    /// On the local network.
    Lan,
    /// A hosted service on the internet.
    Cloud,
}

impl Locality {
    /// The locality as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Locality::Local => "local",
            Locality::Lan => "lan",
            Locality::Cloud => "cloud",
        }
    }
}

/// Where a request's data may go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrivacyClass {
    /// Any target the route allows.
    #[default]
    #[serde(rename = "any")]
    Any,
    /// Never a `cloud` target.
    #[serde(rename = "local-only", alias = "local_only")]
    LocalOnly,
}

impl PrivacyClass {
    /// Whether a request of this class may be sent to a provider of `locality`.
    pub fn allows(self, locality: Locality) -> bool {
        match self {
            PrivacyClass::Any => true,
            PrivacyClass::LocalOnly => locality != Locality::Cloud,
        }
    }

    /// The class as the config and the `x-switchyard-privacy` header spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivacyClass::Any => "any",
            PrivacyClass::LocalOnly => "local-only",
        }
    }

    /// Parses `any` or `local-only` (also `local_only`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "any" => Some(PrivacyClass::Any),
            "local-only" | "local_only" => Some(PrivacyClass::LocalOnly),
            _ => None,
        }
    }

    /// The stricter of two classes: `local-only` wins over `any`. Everything that combines
    /// privacy classes (request, header, caller, key, route, default) uses this one rule.
    ///
    /// ```
    /// use switchyard_core::PrivacyClass::{Any, LocalOnly};
    ///
    /// assert_eq!(Any.stricter(LocalOnly), LocalOnly);
    /// assert_eq!(Any.stricter(Any), Any);
    /// ```
    pub fn stricter(self, other: Self) -> Self {
        match (self, other) {
            (PrivacyClass::LocalOnly, _) | (_, PrivacyClass::LocalOnly) => PrivacyClass::LocalOnly,
            (PrivacyClass::Any, PrivacyClass::Any) => PrivacyClass::Any,
        }
    }

    /// The strictest of two classes, either of which may be unset: [`stricter`](Self::stricter)
    /// of the two when both are set, else the one that is set.
    ///
    /// ```
    /// use switchyard_core::PrivacyClass::{self, Any, LocalOnly};
    ///
    /// assert_eq!(PrivacyClass::strictest(Some(Any), Some(LocalOnly)), Some(LocalOnly));
    /// assert_eq!(PrivacyClass::strictest(None, Some(Any)), Some(Any));
    /// assert_eq!(PrivacyClass::strictest(None, None), None);
    /// ```
    pub fn strictest(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.stricter(b)),
            (Some(c), None) | (None, Some(c)) => Some(c),
            (None, None) => None,
        }
    }
}

/// What a model can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Plain chat / completion.
    pub completion: bool,
    /// Native tool calling.
    pub tools: bool,
    /// Reasoning ("thinking") output.
    pub thinking: bool,
    /// Image input.
    pub vision: bool,
    /// Embeddings (an embedding-only model cannot chat).
    pub embedding: bool,
}

impl Capabilities {
    /// Parses Ollama's `capabilities` list (`completion`, `tools`, `vision`, ...); unknown
    /// entries are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut caps = Capabilities::default();
        for n in names {
            match n {
                "completion" => caps.completion = true,
                "tools" => caps.tools = true,
                "thinking" => caps.thinking = true,
                "vision" => caps.vision = true,
                "embedding" => caps.embedding = true,
                _ => {}
            }
        }
        caps
    }

    /// Whether this model can only embed.
    pub fn embedding_only(&self) -> bool {
        self.embedding && !self.completion
    }
}

/// Price of a model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Prompt tokens.
    pub input_usd_per_mtok: f64,
    /// Generated tokens.
    pub output_usd_per_mtok: f64,
    /// Prompt tokens read from the provider's prompt cache (Anthropic); the input price
    /// when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_usd_per_mtok: Option<f64>,
    /// Prompt tokens written to the provider's prompt cache (Anthropic); the input price
    /// when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_usd_per_mtok: Option<f64>,
}

impl Price {
    /// The cost of `usage` in micro-dollars (millionths of a US dollar), rounded up so
    /// that spend is never under-counted.
    pub fn cost_micro_usd(&self, usage: &Usage) -> u64 {
        // usd_per_mtok * tokens / 1e6 dollars = usd_per_mtok * tokens micro-dollars.
        let input = self.input_usd_per_mtok.max(0.0);
        let cache_read = self.cache_read_usd_per_mtok.map_or(input, |p| p.max(0.0));
        let cache_write = self.cache_write_usd_per_mtok.map_or(input, |p| p.max(0.0));
        let micro = input * f64::from(usage.prompt_tokens)
            + self.output_usd_per_mtok.max(0.0) * f64::from(usage.completion_tokens)
            + cache_read * f64::from(usage.cache_read_tokens)
            + cache_write * f64::from(usage.cache_creation_tokens);
        if micro.is_finite() {
            // Saturating float-to-int conversion; the value is non-negative.
            micro.ceil() as u64
        } else {
            u64::MAX
        }
    }
}

/// One model a provider offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model id as the provider names it (`qwen2.5:7b-instruct-q4_K_M`, `gpt-4.1-mini`).
    pub id: String,
    /// What the model can do; `None` when unknown (discovery could not tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Context window in tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// Maximum output tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u32>,
    /// Where the provider serving it runs.
    pub locality: Locality,
    /// Price, for paid providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Model family (`qwen2`, `llama`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Parameter size (`7.6B`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_size: Option<String>,
    /// Quantization (`Q4_K_M`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Size on disk in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Last modification time as the provider reported it (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
}

impl ModelInfo {
    /// A model with only an id and a locality known.
    pub fn new(id: impl Into<String>, locality: Locality) -> Self {
        Self {
            id: id.into(),
            capabilities: None,
            context_window: None,
            max_output: None,
            locality,
            price: None,
            family: None,
            parameter_size: None,
            quantization: None,
            size_bytes: None,
            modified_at: None,
        }
    }
}
