//! Response bodies: whole, or paced and fault-injecting, counted while they are written.
//!
//! The body is a poll-driven state machine (no task, no channel per stream): hyper polls it
//! for the next frame, it answers from its list of frames, sleeping between them when the
//! script says so.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::script::Fault;

/// Pause before an injected abort, long enough for the frames before it to be flushed.
const FLUSH_BEFORE_ABORT: Duration = Duration::from_millis(20);

/// How a streamed body ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Terminate the body normally.
    Finish,
    /// Stay silent forever, connection open.
    Hang,
    /// Abort the connection (the body ends with an error, so hyper drops the socket).
    Abort,
}

/// The error that makes hyper abort a connection (mid-body, or instead of a response).
#[derive(Debug, thiserror::Error)]
#[error("testkit: connection dropped on purpose (fault injection)")]
pub(crate) struct InjectedDrop;

/// Counters of chat responses being written and of those whose client went away.
#[derive(Debug, Default)]
pub(crate) struct StreamCounters {
    open: AtomicUsize,
    aborted: AtomicUsize,
}

impl StreamCounters {
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub(crate) fn aborted(&self) -> usize {
        self.aborted.load(Ordering::SeqCst)
    }
}

/// Counts one chat response as open while it lives; dropped before [`StreamGuard::complete`]
/// it counts the response as aborted (the client went away: hyper dropped the handler or
/// the body).
#[derive(Debug)]
pub(crate) struct StreamGuard {
    counters: Arc<StreamCounters>,
    completed: bool,
}

impl StreamGuard {
    pub(crate) fn new(counters: &Arc<StreamCounters>) -> Self {
        counters.open.fetch_add(1, Ordering::SeqCst);
        StreamGuard {
            counters: Arc::clone(counters),
            completed: false,
        }
    }

    /// The response was written to its end (or ended on purpose by a fault).
    pub(crate) fn complete(&mut self) {
        self.completed = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.completed {
            self.counters.aborted.fetch_add(1, Ordering::SeqCst);
        }
        self.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Frames to send for a stream fault (request-level faults are handled before this).
///
/// `error_frame` renders the mid-stream error, `oversized` one long chunk, `content_len`
/// is the number of frames before the final part.
pub(crate) fn apply_fault(
    mut frames: Vec<Bytes>,
    content_len: usize,
    fault: Option<&Fault>,
    malformed: &Bytes,
    error_frame: impl FnOnce(&str) -> Bytes,
    oversized: impl FnOnce(usize) -> Bytes,
) -> (Vec<Bytes>, End) {
    let at = frames.len().min(1);
    match fault {
        Some(Fault::HangAfterChunks(n)) => {
            frames.truncate(*n);
            (frames, End::Hang)
        }
        Some(Fault::DropAfterChunks(n)) => {
            frames.truncate(*n);
            (frames, End::Abort)
        }
        Some(Fault::MalformedLine) => {
            frames.insert(at, malformed.clone());
            (frames, End::Finish)
        }
        Some(Fault::ErrorLine(msg)) => {
            frames.truncate(at);
            frames.push(error_frame(msg));
            (frames, End::Finish)
        }
        Some(Fault::OversizedLine(n)) => {
            frames.insert(at, oversized(*n));
            (frames, End::Finish)
        }
        Some(Fault::NoDone) => {
            frames.truncate(content_len);
            (frames, End::Finish)
        }
        Some(Fault::InvalidUtf8) => {
            let mut chunk = oversized(4).to_vec();
            if let Some(p) = chunk.windows(4).position(|w| w == b"xxxx") {
                chunk[p] = 0xff;
            }
            frames.insert(at, Bytes::from(chunk));
            (frames, End::Finish)
        }
        _ => (frames, End::Finish),
    }
}

/// A streamed answer: its frames, its pacing and its end.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) frames: Vec<Bytes>,
    pub(crate) end: End,
    pub(crate) before_first: Duration,
    pub(crate) between: Duration,
}

#[derive(Debug)]
struct Paced {
    frames: std::vec::IntoIter<Bytes>,
    sent: usize,
    end: End,
    before_first: Duration,
    between: Duration,
    /// Allocated on the first pause, then reset for every later one.
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    finished: bool,
}

#[derive(Debug)]
enum Inner {
    Full(Option<Bytes>),
    Paced(Box<Paced>),
}

/// The body of every response the server sends.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    inner: Inner,
    guard: Option<StreamGuard>,
}

impl ResponseBody {
    /// A whole body.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        ResponseBody {
            inner: Inner::Full(Some(bytes.into())),
            guard: None,
        }
    }

    /// A body sending `plan.frames` one at a time with the planned pauses.
    pub(crate) fn paced(plan: Plan) -> Self {
        let Plan {
            frames,
            end,
            before_first,
            between,
        } = plan;
        ResponseBody {
            inner: Inner::Paced(Box::new(Paced {
                frames: frames.into_iter(),
                sent: 0,
                end,
                before_first,
                between,
                sleep: None,
                sleeping: false,
                finished: false,
            })),
            guard: None,
        }
    }

    /// Attaches the guard that counts this response as an open chat stream.
    pub(crate) fn with_guard(mut self, guard: StreamGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    fn complete(&mut self) {
        if let Some(g) = self.guard.as_mut() {
            g.complete();
        }
    }
}

impl Paced {
    /// The pause before the next frame (zero: none).
    fn pause(&self) -> Duration {
        if self.sent == 0 {
            self.before_first
        } else {
            self.between
        }
    }

    /// Sleeps `pause` (armed on the first call, then polled until it has passed).
    fn wait(&mut self, cx: &mut Context<'_>, pause: Duration) -> Poll<()> {
        if !self.sleeping {
            let deadline = Instant::now() + pause;
            match self.sleep.as_mut() {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.sleeping = true;
        }
        if let Some(s) = self.sleep.as_mut() {
            if s.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.sleeping = false;
        Poll::Ready(())
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        if self.finished {
            return Poll::Ready(Step::Done);
        }
        if self.frames.len() > 0 {
            let pause = self.pause();
            if !pause.is_zero() && self.wait(cx, pause).is_pending() {
                return Poll::Pending;
            }
            if let Some(frame) = self.frames.next() {
                self.sent += 1;
                return Poll::Ready(Step::Frame(frame));
            }
        }
        match self.end {
            End::Finish => {
                self.finished = true;
                Poll::Ready(Step::Done)
            }
            // Never woken: the body stays open until the client (or the server) goes away.
            End::Hang => Poll::Pending,
            End::Abort => {
                // Pause first, so hyper flushes what it has buffered (the headers and the
                // frames sent so far) before the connection goes.
                if self.wait(cx, FLUSH_BEFORE_ABORT).is_pending() {
                    return Poll::Pending;
                }
                self.finished = true;
                Poll::Ready(Step::Abort)
            }
        }
    }
}

enum Step {
    Frame(Bytes),
    Done,
    Abort,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = InjectedDrop;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, InjectedDrop>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Full(slot) => {
                let out = slot.take();
                this.complete();
                Poll::Ready(out.map(|b| Ok(Frame::data(b))))
            }
            Inner::Paced(p) => match p.poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Step::Frame(b)) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Step::Done) => {
                    this.complete();
                    Poll::Ready(None)
                }
                Poll::Ready(Step::Abort) => {
                    this.complete();
                    Poll::Ready(Some(Err(InjectedDrop)))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(slot) => slot.is_none(),
            Inner::Paced(p) => p.finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Paced(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Bytes> {
        ["a", "b", "c", "done"]
            .into_iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect()
    }

    fn run(f: &Fault) -> (Vec<Bytes>, End) {
        apply_fault(
            frames(),
            3,
            Some(f),
            &Bytes::from_static(b"bad"),
            |m| Bytes::from(format!("err:{m}")),
            |n| Bytes::from("x".repeat(n)),
        )
    }

    #[test]
    fn faults_shape_the_frames() {
        assert_eq!(
            run(&Fault::HangAfterChunks(2)),
            (frames()[..2].to_vec(), End::Hang)
        );
        assert_eq!(
            run(&Fault::DropAfterChunks(1)),
            (frames()[..1].to_vec(), End::Abort)
        );
        assert_eq!(run(&Fault::NoDone).0, frames()[..3].to_vec());
        assert_eq!(run(&Fault::MalformedLine).0[1], Bytes::from_static(b"bad"));
        assert_eq!(run(&Fault::MalformedLine).0.len(), 5);
        assert_eq!(
            run(&Fault::InvalidUtf8).0[1],
            Bytes::from_static(b"\xffxxx")
        );
        assert_eq!(
            run(&Fault::ErrorLine("x".into())).0,
            vec![frames()[0].clone(), "err:x".into()]
        );
        assert_eq!(
            run(&Fault::OversizedLine(3)).0[1],
            Bytes::from_static(b"xxx")
        );
    }

    #[test]
    fn guard_counts_open_and_aborted() {
        let c = Arc::new(StreamCounters::default());
        let mut done = StreamGuard::new(&c);
        let gone = StreamGuard::new(&c);
        assert_eq!(c.open(), 2);
        done.complete();
        drop(done);
        drop(gone);
        assert_eq!((c.open(), c.aborted()), (0, 1));
    }
}
