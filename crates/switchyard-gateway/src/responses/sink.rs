//! The Responses encoder of one answer, keeping the response in the store once it is
//! complete (`store: true`); failed responses are not kept. A translated answer is
//! encoded by the Responses stream encoder; a passed-through one is the upstream's own
//! bytes ([`NativeSink`]). The store write is handed out as a future
//! ([`ResponsesSink::take_write`]) that the body awaits before the answer's last bytes.

use std::sync::Arc;

use serde_json::Value;
use switchyard_core::{ChatEvent, ProviderError};
use switchyard_stream::responses::ResponsesStreamEncoder;

use super::native::NativeSink;
use super::store::{ResponseStore, StoreWrite, StoredResponse};

/// A response to keep once it is complete: the record without the response object and
/// without the answer's turn (both added at the end).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) store: Arc<ResponseStore>,
    pub(crate) record: StoredResponse,
}

/// The Responses stream encoder plus the store write at its end, or the pass-through.
#[derive(Debug)]
pub(crate) enum ResponsesSink {
    /// Chat events encoded as Responses events.
    Translated(Box<Translated>),
    /// The upstream's own events.
    Native(NativeSink),
}

/// The encoder of a translated answer and the response it keeps.
pub(crate) struct Translated {
    encoder: ResponsesStreamEncoder,
    pending: Option<Pending>,
    /// The store write of the finished response, until taken.
    write: Option<StoreWrite>,
}

impl std::fmt::Debug for StoreWriteSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "pending" } else { "none" })
    }
}

/// Shows whether a write waits (the future itself has no `Debug`).
pub(crate) struct StoreWriteSlot<'a>(pub(crate) &'a Option<StoreWrite>);

impl ResponsesSink {
    pub(crate) fn new(encoder: ResponsesStreamEncoder, pending: Option<Pending>) -> Self {
        ResponsesSink::Translated(Box::new(Translated {
            encoder,
            pending,
            write: None,
        }))
    }

    /// The store write of the finished response, once (`None` when there is nothing to
    /// keep, or not yet).
    pub(crate) fn take_write(&mut self) -> Option<StoreWrite> {
        match self {
            ResponsesSink::Translated(t) => t.write.take(),
            ResponsesSink::Native(sink) => sink.take_write(),
        }
    }

    pub(crate) fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        match self {
            ResponsesSink::Translated(t) => {
                t.encoder.encode(event, out);
                if t.encoder.is_done() {
                    t.write = persist(&t.encoder, &mut t.pending);
                }
            }
            ResponsesSink::Native(sink) => sink.encode(event, out),
        }
    }

    pub(crate) fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        match self {
            ResponsesSink::Translated(t) => {
                t.pending = None;
                t.encoder.encode_error(err, out);
            }
            ResponsesSink::Native(sink) => sink.encode_error(err, out),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        match self {
            ResponsesSink::Translated(t) => t.encoder.is_done(),
            ResponsesSink::Native(sink) => sink.is_done(),
        }
    }

    /// The JSON text of a translated answer's completed (or incomplete) response, written
    /// without building its `Value` (`None` for a failed one, and for native answers).
    pub(crate) fn final_response_json(&self) -> Option<Vec<u8>> {
        match self {
            ResponsesSink::Translated(t) => t.encoder.final_response_json(),
            ResponsesSink::Native(_) => None,
        }
    }

    /// The whole response object of a translated answer, once it has ended.
    pub(crate) fn final_response(&self) -> Option<&Value> {
        match self {
            ResponsesSink::Translated(t) => t.encoder.final_response(),
            ResponsesSink::Native(_) => None,
        }
    }
}

impl std::fmt::Debug for Translated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translated")
            .field("encoder", &self.encoder)
            .field("pending", &self.pending)
            .field("write", &StoreWriteSlot(&self.write))
            .finish()
    }
}

/// The store write of the finished response (none for a failed one).
fn persist(encoder: &ResponsesStreamEncoder, pending: &mut Option<Pending>) -> Option<StoreWrite> {
    let Pending { store, mut record } = pending.take()?;
    let response = encoder.final_response()?;
    if response["status"] == "failed" {
        return None;
    }
    record.response = response.clone();
    record.history.push(encoder.assistant_turn().clone());
    Some(store.write_after_answer(record, false))
}
