//! Why an upstream client's configuration is refused: one error for every client crate
//! (Ollama, OpenAI-compatible, Anthropic), with the checks they share.

use switchyard_core::ModelInfo;

use crate::client::{BaseUrlError, ClientBuildError};

/// Why an upstream client could not be built from its configuration. The client crates
/// name it `OllamaBuildError`, `OpenAiBuildError` and `AnthropicBuildError`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The base URL is not an absolute `http`/`https` URL, or carries login details.
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
    /// The HTTP client could not be built (bad header, CA file, proxy).
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// A setting that must be above zero is zero.
    #[error("{field} must be above zero")]
    Zero {
        /// The setting as the configuration names it (`num_ctx`, `discovery.max_models`).
        field: &'static str,
        /// Its stable reason code (`invalid_num_ctx`, `invalid_discovery_limit`).
        code: &'static str,
    },
    /// The static catalog names the same model twice.
    #[error("the static model catalog lists `{id}` twice")]
    DuplicateModel {
        /// The repeated model id.
        id: String,
    },
}

impl SetupError {
    /// A stable snake_case code for this error.
    pub fn reason_code(&self) -> &'static str {
        match self {
            SetupError::BaseUrl(_) => "invalid_base_url",
            SetupError::Client(e) => e.reason_code(),
            SetupError::Zero { code, .. } => code,
            SetupError::DuplicateModel { .. } => "duplicate_model",
        }
    }
}

/// Refuses a static model catalog that names the same model id twice (the first repeat).
pub fn check_catalog(models: &[ModelInfo]) -> Result<(), SetupError> {
    let repeated = (0..models.len()).find(|&i| models[..i].iter().any(|o| o.id == models[i].id));
    match repeated {
        Some(i) => Err(SetupError::DuplicateModel {
            id: models[i].id.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::Locality;

    #[test]
    fn codes_and_messages() {
        let zero = SetupError::Zero {
            field: "num_ctx",
            code: "invalid_num_ctx",
        };
        assert_eq!(zero.to_string(), "num_ctx must be above zero");
        assert_eq!(zero.reason_code(), "invalid_num_ctx");
        let models = ["a", "b", "b", "a"].map(|id| ModelInfo::new(id, Locality::Cloud));
        let e = check_catalog(&models).err();
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some("the static model catalog lists `b` twice")
        );
        assert_eq!(e.map(|e| e.reason_code()), Some("duplicate_model"));
        assert!(check_catalog(&models[..2]).is_ok());
    }
}
