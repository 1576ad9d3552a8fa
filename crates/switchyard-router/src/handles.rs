//! The providers behind a router, for operations that are not routed chats: an upstream's
//! version, the models it has loaded, pulling and warming models.

use std::sync::Arc;

use switchyard_core::{Locality, Provider};

use crate::Router;

/// One configured provider: its id, locality and client.
///
/// Chats never go through a handle: they are routed ([`Router::route`]), so policy applies.
/// Handles serve model lifecycle operations, which the caller must authorise itself.
#[derive(Debug, Clone)]
pub struct ProviderHandle {
    /// The provider's id (`local`).
    pub id: String,
    /// Where it runs.
    pub locality: Locality,
    /// The client.
    pub provider: Arc<dyn Provider>,
}

impl Router {
    /// Every configured provider, in config order.
    pub fn providers(&self) -> Vec<ProviderHandle> {
        self.inner
            .slots
            .iter()
            .map(|s| ProviderHandle {
                id: s.id.to_string(),
                locality: s.effective_locality(),
                provider: Arc::clone(&s.provider),
            })
            .collect()
    }

    /// The provider with this id.
    pub fn provider(&self, id: &str) -> Option<ProviderHandle> {
        self.providers().into_iter().find(|p| p.id == id)
    }
}

/// Why no provider could be chosen for a model lifecycle operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalTargetError {
    /// The named provider is not configured.
    #[error("no provider `{0}`")]
    Unknown(String),
    /// The named provider is in the cloud.
    #[error("provider `{0}` is a cloud provider; models are managed on local providers only")]
    Cloud(String),
    /// No provider named, and not exactly one local or LAN provider configured.
    #[error("name the provider (`provider` or `provider/model`); local providers: {0}")]
    Ambiguous(String),
}

impl LocalTargetError {
    /// A stable reason code: `provider_unknown`, `provider_cloud`, `provider_ambiguous`.
    pub fn reason_code(&self) -> &'static str {
        match self {
            LocalTargetError::Unknown(_) => "provider_unknown",
            LocalTargetError::Cloud(_) => "provider_cloud",
            LocalTargetError::Ambiguous(_) => "provider_ambiguous",
        }
    }
}

impl Router {
    /// The local or LAN provider a model lifecycle operation (a pull) on `model` goes to,
    /// and the model's name there: the provider `named`, else the `provider/` prefix of
    /// `model` when it names a provider, else the only local or LAN provider.
    pub fn local_target(
        &self,
        named: Option<&str>,
        model: &str,
    ) -> Result<(ProviderHandle, String), LocalTargetError> {
        let prefixed = model
            .split_once('/')
            .and_then(|(p, rest)| self.provider(p).map(|h| (h, rest.to_owned())));
        let (handle, model) = match (named, prefixed) {
            (Some(id), _) => match self.provider(id) {
                Some(h) => (h, model.to_owned()),
                None => return Err(LocalTargetError::Unknown(id.to_owned())),
            },
            (None, Some(found)) => found,
            (None, None) => {
                let local: Vec<_> = self
                    .providers()
                    .into_iter()
                    .filter(|p| p.locality != Locality::Cloud)
                    .collect();
                match <[ProviderHandle; 1]>::try_from(local) {
                    Ok([only]) => (only, model.to_owned()),
                    Err(many) => {
                        let ids: Vec<_> = many.iter().map(|p| p.id.as_str()).collect();
                        let ids = if ids.is_empty() {
                            "none".to_owned()
                        } else {
                            ids.join(", ")
                        };
                        return Err(LocalTargetError::Ambiguous(ids));
                    }
                }
            }
        };
        if handle.locality == Locality::Cloud {
            return Err(LocalTargetError::Cloud(handle.id));
        }
        Ok((handle, model))
    }
}
