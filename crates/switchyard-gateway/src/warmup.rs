//! Warming models at start: each listed model is loaded on its provider (and kept loaded
//! for its `keep_alive`); `/readyz` answers 503 until all are loaded, one failed for good,
//! or the timeout passed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_core::KeepAlive;
use tokio::time::Instant;

use crate::Gateway;

/// One model to load at start.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmTarget {
    /// The provider's id.
    pub provider: String,
    /// The model's name on that provider.
    pub model: String,
    /// How long the upstream keeps it loaded (its default when `None`; `-1`: forever).
    pub keep_alive: Option<KeepAlive>,
}

/// What is still loading, and until when `/readyz` waits for it.
#[derive(Debug, Default)]
pub(crate) struct Warmup {
    state: Mutex<WarmState>,
}

#[derive(Debug, Default)]
struct WarmState {
    /// `provider/model` of the models still loading.
    pending: Vec<String>,
    deadline: Option<Instant>,
}

impl Warmup {
    fn lock(&self) -> MutexGuard<'_, WarmState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The models `/readyz` still waits for (empty once all are done or the time is up).
    pub(crate) fn waiting_for(&self) -> Vec<String> {
        let state = self.lock();
        match state.deadline {
            Some(deadline) if Instant::now() < deadline => state.pending.clone(),
            _ => Vec::new(),
        }
    }

    fn done(&self, name: &str) {
        self.lock().pending.retain(|p| p != name);
    }
}

impl Gateway {
    /// Loads `targets` on their providers in the background (all at once); `/readyz`
    /// answers 503 naming them until each is loaded or failed, or `timeout` passed. A
    /// failure is logged with its reason code; it does not keep the gateway unready.
    pub fn warm(&self, targets: Vec<WarmTarget>, timeout: Duration) {
        if targets.is_empty() {
            return;
        }
        let warmup = Arc::clone(&self.shared.warmup);
        {
            let mut state = warmup.lock();
            state.pending = targets
                .iter()
                .map(|t| format!("{}/{}", t.provider, t.model))
                .collect();
            state.deadline = Some(Instant::now() + timeout);
        }
        let router = self.router_handle();
        for target in targets {
            let warmup = Arc::clone(&warmup);
            let router = Arc::clone(&router);
            tokio::spawn(async move {
                let name = format!("{}/{}", target.provider, target.model);
                let handle = router.load_full().provider(&target.provider);
                let result = match handle {
                    Some(h) => {
                        let load = h.provider.warm(&target.model, target.keep_alive.as_ref());
                        tokio::time::timeout(timeout, load).await
                    }
                    None => Ok(Err(switchyard_core::ProviderError::new(
                        switchyard_core::ErrorKind::InvalidRequest,
                        format!("no provider `{}`", target.provider),
                    ))),
                };
                match result {
                    Ok(Ok(())) => tracing::info!(model = %name, "model loaded (warm)"),
                    Ok(Err(e)) => tracing::warn!(
                        model = %name, reason = e.reason_code(), error = %e,
                        "could not warm a model"
                    ),
                    Err(_) => tracing::warn!(
                        model = %name, timeout_ms = timeout.as_millis() as u64,
                        "a model did not load in time; /readyz no longer waits for it"
                    ),
                }
                warmup.done(&name);
            });
        }
    }
}
