//! Request bodies as they arrive: a deadline for each piece (a client that stops sending
//! mid-body gets a 408 and its connection closed) and one budget for the memory that all
//! request bodies being read hold together (a 503 with `retry-after` beyond it).
//!
//! The front layer wraps every request body in [`GuardedBody`]; [`crate::chat::read_body`]
//! turns its [`IntakeError`] into the API's error shape. Bytes count against the budget
//! from the moment they are read until the body is consumed or dropped.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use http::header::CONNECTION;
use http::{HeaderValue, Version};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::api::{Api, ApiError};
use crate::gateway::Shared;
use switchyard_core::{ErrorKind, ProviderError};

/// Why reading a request body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IntakeError {
    /// No piece of the body arrived within the body read timeout.
    #[error("no part of the request body arrived for {0:?}")]
    Timeout(Duration),
    /// Request bodies together hold the configured maximum of memory.
    #[error("the gateway holds its limit of {0} bytes of request bodies; try again shortly")]
    OverBudget(usize),
}

/// The bytes held by every request body being read.
#[derive(Debug, Default)]
pub(crate) struct BodyBudget {
    held: AtomicUsize,
}

impl BodyBudget {
    /// Takes `n` bytes if the total stays within `max`.
    fn try_take(&self, n: usize, max: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|total| *total <= max)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// A request body with a read deadline per piece and a share of the [`BodyBudget`].
pub(crate) struct GuardedBody {
    inner: Body,
    shared: Arc<Shared>,
    held: usize,
    timeout: Duration,
    /// Armed when a read first has to wait (a body that is all there never needs one),
    /// re-armed after every piece.
    deadline: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
    failed: bool,
}

impl GuardedBody {
    fn fail(&mut self, error: IntakeError) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.failed = true;
        if matches!(error, IntakeError::Timeout(_)) {
            self.timed_out.store(true, Ordering::Release);
        }
        Poll::Ready(Some(Err(axum::Error::new(error))))
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    return this.fail(IntakeError::Timeout(this.timeout));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                let max = this.shared.settings.load().config.max_body_memory_bytes;
                if !this.shared.bodies.try_take(len, max) {
                    return this.fail(IntakeError::OverBudget(max));
                }
                this.held += len;
                if let Some(deadline) = this.deadline.as_mut() {
                    deadline.as_mut().reset(Instant::now() + this.timeout);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        self.shared.bodies.give_back(self.held);
    }
}

/// What [`guard`] leaves to do once the answer is there.
pub(crate) struct BodyGuard {
    timed_out: Arc<AtomicBool>,
    version: Version,
}

/// Wraps `request`'s body in a [`GuardedBody`] (done for every request by
/// [`crate::front::Front`]).
pub(crate) fn guard(shared: &Arc<Shared>, request: Request) -> (Request, BodyGuard) {
    let timeout = shared.settings.load().config.body_read_timeout;
    let timed_out = Arc::new(AtomicBool::new(false));
    let version = request.version();
    let request = request.map(|inner| {
        Body::new(GuardedBody {
            inner,
            shared: Arc::clone(shared),
            held: 0,
            timeout,
            deadline: None,
            timed_out: Arc::clone(&timed_out),
            failed: false,
        })
    });
    (request, BodyGuard { timed_out, version })
}

impl BodyGuard {
    /// When the body timed out, the HTTP/1 connection is closed after the answer (the
    /// client is in the middle of a body we will not read).
    pub(crate) fn finish(&self, response: &mut Response) {
        if self.timed_out.load(Ordering::Acquire) && self.version <= Version::HTTP_11 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// The answer to a body that could not be read: 408 (`invalid_request`) for a client that
/// stopped sending, 503 (`overloaded`, with `retry-after`) over the memory budget.
pub(crate) fn refused(api: Api, error: IntakeError) -> ApiError {
    match error {
        IntakeError::Timeout(_) => ApiError::with_status(
            api,
            http::StatusCode::REQUEST_TIMEOUT,
            ProviderError::new(ErrorKind::InvalidRequest, error.to_string()),
        ),
        IntakeError::OverBudget(_) => ApiError::new(
            api,
            ProviderError::new(ErrorKind::Overloaded, error.to_string()),
        ),
    }
}

/// The intake error inside a body read error, if it was one.
pub(crate) fn intake_error(err: &(dyn std::error::Error + 'static)) -> Option<IntakeError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<IntakeError>() {
            return Some(*found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = BodyBudget::default();
        assert!(budget.try_take(600, 1000));
        assert!(!budget.try_take(600, 1000));
        assert!(budget.try_take(400, 1000));
        budget.give_back(600);
        assert!(budget.try_take(600, 1000));
        assert!(!budget.try_take(usize::MAX, usize::MAX));
    }
}
