//! Reading the rest of an upstream body after the final event, so its connection can go
//! back to the pool, without ever holding the caller long: one helper for the timed body
//! stream here and for the gateway's streamed and whole answers.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::time::{Instant, Sleep};

/// How long the rest of an upstream body is awaited after the final event: normally it ends
/// at once, and reading it lets the connection be reused; the answer is complete, so the
/// caller is never held longer than this.
pub const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// Reads and drops what a stream still yields after its final event: until the stream
/// ends, an item's cost says stop (`None`), `budget` is spent, or [`DRAIN_GRACE`] has
/// passed since the stream first had nothing ready (a stream that has ended costs no
/// timer and no clock read).
#[derive(Debug)]
pub struct Drain {
    deadline: Option<Pin<Box<Sleep>>>,
    budget: usize,
    spent: usize,
}

impl Drain {
    /// A drain that stops once `budget` (in the unit of the cost function given to
    /// [`Drain::poll_drain`]) has been read.
    pub fn new(budget: usize) -> Self {
        Self {
            deadline: None,
            budget,
            spent: 0,
        }
    }

    /// Reads `stream` until the drain is over (`Ready`), or it has nothing ready within
    /// the grace period yet (`Pending`, woken by the stream or the deadline). `cost` weighs
    /// each item; `None` ends the drain.
    pub fn poll_drain<S, F>(&mut self, stream: &mut S, cx: &mut Context<'_>, cost: F) -> Poll<()>
    where
        S: Stream + Unpin + ?Sized,
        F: Fn(&S::Item) -> Option<usize>,
    {
        loop {
            if self.spent >= self.budget {
                return Poll::Ready(());
            }
            match Pin::new(&mut *stream).poll_next(cx) {
                Poll::Ready(Some(item)) => match cost(&item) {
                    Some(n) => self.spent = self.spent.saturating_add(n),
                    None => return Poll::Ready(()),
                },
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => {
                    let deadline = self.deadline.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until(Instant::now() + DRAIN_GRACE))
                    });
                    return if deadline.as_mut().poll(cx).is_ready() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
    }

    /// Drains `stream`: at most `budget` items, and for [`DRAIN_GRACE`] at most once it
    /// has nothing ready. A stream that has already ended (the usual case after the final
    /// event) costs no timer and no clock read.
    pub async fn items<S>(stream: &mut S, budget: usize)
    where
        S: Stream + Unpin + ?Sized,
    {
        let mut drain = Drain::new(budget);
        std::future::poll_fn(|cx| drain.poll_drain(stream, cx, |_| Some(1))).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::task::Poll;

    use futures::{StreamExt as _, stream};

    use super::*;

    #[tokio::test]
    async fn an_ended_stream_is_drained_without_a_timer() {
        let mut ended = stream::iter([1, 2, 3]);
        let mut drain = Drain::new(10);
        let done =
            std::future::poll_fn(|cx| Poll::Ready(drain.poll_drain(&mut ended, cx, |_| Some(1))))
                .await;
        assert!(done.is_ready());
        assert!(
            drain.deadline.is_none(),
            "no timer for a stream that had ended"
        );
        assert_eq!(drain.spent, 3);
    }

    #[tokio::test]
    async fn the_budget_ends_the_drain() {
        let mut endless = stream::repeat(0u8);
        Drain::items(&mut endless, 5).await;
        assert_eq!(endless.next().await, Some(0), "the stream is left as it is");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_with_nothing_ready_is_given_the_grace_period() {
        let started = Instant::now();
        let mut silent = stream::pending::<u8>();
        Drain::items(&mut silent, 5).await;
        assert_eq!(started.elapsed(), DRAIN_GRACE);
    }
}
