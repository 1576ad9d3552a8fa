//! State shared by the accept loop, every connection and the `TestUpstream` handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::body::StreamCounters;
use crate::config::{ModelSpec, UpstreamConfig, after_tool_key};
use crate::record::RequestLog;
use crate::render::{Api, Rendered};
use crate::script::{Delays, Fault, Script};
use crate::time::rfc3339_now;

/// Models and scripts, changeable at runtime.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub(crate) models: Vec<ModelSpec>,
    pub(crate) scripts: HashMap<String, Script>,
    pub(crate) default_script: Script,
    pub(crate) loaded: Vec<String>,
}

impl Catalog {
    /// The listed model called `name` (`name:latest` when `name` has no tag, as Ollama
    /// resolves it).
    pub(crate) fn find(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name == name).or_else(|| {
            if name.contains(':') {
                return None;
            }
            self.models.iter().find(|m| {
                m.name
                    .strip_suffix(":latest")
                    .is_some_and(|base| base == name)
            })
        })
    }
}

/// What a chat request for a known model needs.
#[derive(Debug)]
pub(crate) struct ChatEntry {
    pub(crate) embedding_only: bool,
    pub(crate) delays: Delays,
    pub(crate) fault: Option<Fault>,
    pub(crate) rendered: Arc<Rendered>,
}

/// Rendered answers per model, indexed by API (`Ollama`, `OpenAi`).
type Cache = HashMap<String, [Option<Arc<Rendered>>; 4]>;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) catalog: RwLock<Catalog>,
    fault: RwLock<Option<Fault>>,
    pub(crate) log: RequestLog,
    cache: Mutex<Cache>,
    pub(crate) fast: bool,
    pub(crate) api_key: Option<String>,
    pub(crate) version: String,
    pub(crate) max_body: usize,
    pub(crate) reasoning_field: String,
    pub(crate) modified_at: String,
    /// Open and aborted chat responses.
    pub(crate) streams: Arc<StreamCounters>,
    /// Paths answered by a fake reverse proxy's 404 page.
    blocked: RwLock<Vec<String>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(config: UpstreamConfig) -> Self {
        Shared {
            catalog: RwLock::new(Catalog {
                models: config.models,
                scripts: config.scripts,
                default_script: config.default_script,
                loaded: config.loaded,
            }),
            fault: RwLock::new(None),
            log: RequestLog::new(config.record_limit),
            cache: Mutex::new(HashMap::new()),
            fast: config.fast,
            api_key: config.api_key,
            version: config.version,
            max_body: config.max_body_bytes,
            reasoning_field: config.openai_reasoning_field,
            modified_at: rfc3339_now(),
            streams: Arc::new(StreamCounters::default()),
            blocked: RwLock::new(Vec::new()),
        }
    }

    pub(crate) fn fault(&self) -> Option<Fault> {
        read(&self.fault).clone()
    }

    /// Replaces the server-wide fault, returning the previous one.
    pub(crate) fn replace_fault(&self, fault: Option<Fault>) -> Option<Fault> {
        std::mem::replace(&mut *write(&self.fault), fault)
    }

    pub(crate) fn set_blocked(&self, paths: Vec<String>) {
        *write(&self.blocked) = paths;
    }

    /// Whether `path` is blocked: equal to a blocked path, or below it (`/v1` blocks
    /// `/v1/models`).
    pub(crate) fn is_blocked(&self, path: &str) -> bool {
        let blocked = read(&self.blocked);
        blocked.iter().any(|b| {
            path == b
                || (path.starts_with(b.as_str())
                    && (b.ends_with('/') || path.as_bytes().get(b.len()) == Some(&b'/')))
        })
    }

    pub(crate) fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        read(&self.catalog)
    }

    /// Changes the catalog and forgets every rendered answer.
    pub(crate) fn edit(&self, f: impl FnOnce(&mut Catalog)) {
        f(&mut write(&self.catalog));
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The entry for a chat with `model` on `api`, or `None` for an unknown model.
    pub(crate) fn chat_entry(
        &self,
        model: &str,
        api: Api,
        after_tool_result: bool,
    ) -> Option<ChatEntry> {
        let catalog = self.catalog();
        let spec = catalog.find(model)?;
        let after_key = after_tool_key(&spec.name);
        let model = spec.name.as_str();
        let (key, script) = match catalog.scripts.get(&after_key) {
            Some(script) if after_tool_result => (after_key.as_str(), script),
            _ => (
                spec.name.as_str(),
                catalog
                    .scripts
                    .get(&spec.name)
                    .unwrap_or(&catalog.default_script),
            ),
        };
        let slot = match api {
            Api::Ollama => 0,
            Api::OpenAi => 1,
            Api::Anthropic => 2,
            Api::Responses => 3,
        };
        let rendered = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(key).and_then(|e| e[slot].as_ref()) {
                Some(r) => Arc::clone(r),
                None => {
                    let r = Arc::new(Rendered::new(api, model, script, &self.reasoning_field));
                    cache.entry(key.to_owned()).or_default()[slot] = Some(Arc::clone(&r));
                    r
                }
            }
        };
        Some(ChatEntry {
            embedding_only: spec.embedding_only,
            delays: script.delays,
            fault: script.fault.clone(),
            rendered,
        })
    }
}
