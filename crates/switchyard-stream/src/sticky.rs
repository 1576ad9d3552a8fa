//! A decoder's first error, kept: after an error every call answers with it again.

use switchyard_core::ProviderError;

/// The first error a decoder met. The stream decoders check it before any work and keep
/// the error of any step that fails, so a broken stream stays broken.
#[derive(Debug, Default)]
pub(crate) struct StickyError(Option<ProviderError>);

impl StickyError {
    /// The kept error, if any, as an `Err`.
    #[inline]
    pub(crate) fn check(&self) -> Result<(), ProviderError> {
        match &self.0 {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// `result`, unchanged; its error (if any) is kept for later calls.
    #[inline]
    pub(crate) fn keep<T>(&mut self, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
        if let Err(e) = &result {
            self.0 = Some(e.clone());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_is_kept() {
        let mut sticky = StickyError::default();
        assert!(sticky.check().is_ok());
        assert_eq!(sticky.keep(Ok::<u8, ProviderError>(1)).ok(), Some(1));
        assert!(sticky.check().is_ok());
        let first = ProviderError::malformed("first");
        assert!(sticky.keep::<()>(Err(first)).is_err());
        assert_eq!(
            sticky
                .check()
                .err()
                .map(|e| e.message().to_owned())
                .as_deref(),
            Some("first")
        );
    }
}
