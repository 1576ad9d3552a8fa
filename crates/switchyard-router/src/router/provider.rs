//! The router as a [`Provider`] itself.

use super::*;

#[async_trait]
impl Provider for Router {
    /// Routes the request ([`Router::route`]); a routing failure becomes its loud
    /// [`ProviderError`] ([`RouteFailure::into_provider_error`]).
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        match self.route(request).await {
            Ok(stream) => Ok(Box::pin(stream)),
            Err(failure) => Err(RouteFailure::into_provider_error(failure)),
        }
    }

    /// The [`Router::catalog`], each entry's id being the name to request.
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(self
            .catalog()
            .await
            .into_iter()
            .map(|e| ModelInfo { id: e.id, ..e.info })
            .collect())
    }

    /// `Ok` when at least one provider is up (not down, not cooling).
    async fn health(&self) -> Result<(), ProviderError> {
        let status = self.provider_status();
        if status.iter().any(|s| s.health == Health::Up) {
            return Ok(());
        }
        let detail = status
            .iter()
            .map(|s| match &s.health {
                Health::Up => format!("{}: up", s.id),
                Health::Down { reason } => format!("{}: down ({reason})", s.id),
                Health::Cooling {
                    reason,
                    remaining_ms,
                    ..
                } => {
                    format!("{}: cooling for {remaining_ms} ms ({reason})", s.id)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(ProviderError::new(
            ErrorKind::Overloaded,
            if detail.is_empty() {
                "no provider is configured".to_owned()
            } else {
                format!("no provider is up: {detail}")
            },
        ))
    }
}
