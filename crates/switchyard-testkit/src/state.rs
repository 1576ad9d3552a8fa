//! State shared by the accept loop, every connection and the `TestUpstream` handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::config::{ModelSpec, UpstreamConfig};
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

/// What a chat request for a known model needs.
#[derive(Debug)]
pub(crate) struct ChatEntry {
    pub(crate) embedding_only: bool,
    pub(crate) delays: Delays,
    pub(crate) fault: Option<Fault>,
    pub(crate) rendered: Arc<Rendered>,
}

/// Rendered answers per model, indexed by API (`Ollama`, `OpenAi`).
type Cache = HashMap<String, [Option<Arc<Rendered>>; 2]>;

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
    /// `true` while the server-wide fault is [`Fault::Refuse`] (the accept loop watches it).
    pub(crate) refuse: watch::Sender<bool>,
    /// Whether the listener is currently bound (the accept loop reports it).
    pub(crate) listening: watch::Sender<bool>,
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
            refuse: watch::Sender::new(false),
            listening: watch::Sender::new(true),
        }
    }

    pub(crate) fn fault(&self) -> Option<Fault> {
        read(&self.fault).clone()
    }

    pub(crate) fn set_fault(&self, fault: Option<Fault>) {
        let refuse = matches!(fault, Some(Fault::Refuse));
        *write(&self.fault) = fault;
        self.refuse.send_replace(refuse);
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
    pub(crate) fn chat_entry(&self, model: &str, api: Api) -> Option<ChatEntry> {
        let catalog = self.catalog();
        let spec = catalog.models.iter().find(|m| m.name == model)?;
        let script = catalog.scripts.get(model).unwrap_or(&catalog.default_script);
        let slot = match api {
            Api::Ollama => 0,
            Api::OpenAi => 1,
        };
        let rendered = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(model).and_then(|e| e[slot].as_ref()) {
                Some(r) => Arc::clone(r),
                None => {
                    let r = Arc::new(Rendered::new(api, model, script, &self.reasoning_field));
                    cache.entry(model.to_owned()).or_default()[slot] = Some(Arc::clone(&r));
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
