//! What reaches a provider at the end of a routed request: a chat, or another operation
//! (embeddings, generate) routed with the same policy through [`Router::route_with`].
//!
//! [`Router::route_with`]: crate::Router::route_with

use std::sync::Arc;

use async_trait::async_trait;
use switchyard_core::{ChatRequest, ChatStream, Provider, ProviderError};

/// The call a routed request makes on the provider that the plan and the last policy
/// check chose, with the upstream's own model name. It answers as a chat stream: the
/// router watches its first event (fallback before it), its usage (spend, budgets) and
/// its end (the decision record).
#[async_trait]
pub trait Dispatch: Send + Sync {
    /// Calls `provider` for `request` with the model `model`.
    async fn call(
        &self,
        provider: &Arc<dyn Provider>,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError>;
}

/// A chat: [`Provider::chat_as`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatCall;

#[async_trait]
impl Dispatch for ChatCall {
    async fn call(
        &self,
        provider: &Arc<dyn Provider>,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        provider.chat_as(request, model).await
    }
}
