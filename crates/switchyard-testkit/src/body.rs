//! Paced, fault-injecting response bodies.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::stream;

use crate::script::Fault;

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

/// The error that makes hyper abort a connection mid-body.
#[derive(Debug, thiserror::Error)]
#[error("testkit: connection dropped on purpose (fault injection)")]
pub(crate) struct InjectedDrop;

/// What a streamed answer sends, after faults were applied.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) frames: Vec<Bytes>,
    pub(crate) end: End,
    pub(crate) before_first: Duration,
    pub(crate) between: Duration,
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
        _ => (frames, End::Finish),
    }
}

/// A body that sends `plan.frames` one chunk at a time with the planned pauses.
pub(crate) fn paced(plan: Plan) -> Body {
    let Plan { frames, end, before_first, between } = plan;
    let state = (frames.into_iter(), 0usize, false);
    let s = stream::unfold(state, move |(mut it, i, ended)| async move {
        if ended {
            return None;
        }
        match it.next() {
            Some(frame) => {
                let pause = if i == 0 { before_first } else { between };
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Some((Ok(frame), (it, i + 1, false)))
            }
            None => match end {
                End::Finish => None,
                End::Hang => {
                    std::future::pending::<()>().await;
                    None
                }
                End::Abort => Some((Err(InjectedDrop), (it, i, true))),
            },
        }
    });
    Body::from_stream(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Bytes> {
        ["a", "b", "c", "done"].into_iter().map(Bytes::from_static).collect()
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
        assert_eq!(run(&Fault::HangAfterChunks(2)), (frames()[..2].to_vec(), End::Hang));
        assert_eq!(run(&Fault::DropAfterChunks(1)), (frames()[..1].to_vec(), End::Abort));
        assert_eq!(run(&Fault::NoDone).0, frames()[..3].to_vec());
        assert_eq!(run(&Fault::MalformedLine).0[1], Bytes::from_static(b"bad"));
        assert_eq!(run(&Fault::MalformedLine).0.len(), 5);
        assert_eq!(run(&Fault::ErrorLine("x".into())).0, vec![frames()[0].clone(), "err:x".into()]);
        assert_eq!(run(&Fault::OversizedLine(3)).0[1], Bytes::from_static(b"xxx"));
    }
}
