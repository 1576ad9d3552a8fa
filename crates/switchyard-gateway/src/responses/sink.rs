//! The Responses encoder of one answer, keeping the response in the store once it is
//! complete (`store: true`); failed responses are not kept. A translated answer is
//! encoded by the Responses stream encoder; a passed-through one is the upstream's own
//! bytes ([`NativeSink`]).

use std::sync::Arc;

use serde_json::Value;
use switchyard_core::{ChatEvent, ProviderError};
use switchyard_stream::responses::ResponsesStreamEncoder;

use super::native::NativeSink;
use super::store::{ResponseStore, StoredResponse};

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
#[derive(Debug)]
pub(crate) struct Translated {
    encoder: ResponsesStreamEncoder,
    pending: Option<Pending>,
}

impl ResponsesSink {
    pub(crate) fn new(encoder: ResponsesStreamEncoder, pending: Option<Pending>) -> Self {
        ResponsesSink::Translated(Box::new(Translated { encoder, pending }))
    }

    pub(crate) fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        match self {
            ResponsesSink::Translated(t) => {
                t.encoder.encode(event, out);
                if t.encoder.is_done() {
                    persist(&t.encoder, &mut t.pending);
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

    /// The whole response object of a translated answer, once it has ended.
    pub(crate) fn final_response(&self) -> Option<&Value> {
        match self {
            ResponsesSink::Translated(t) => t.encoder.final_response(),
            ResponsesSink::Native(_) => None,
        }
    }
}

fn persist(encoder: &ResponsesStreamEncoder, pending: &mut Option<Pending>) {
    let Some(Pending { store, mut record }) = pending.take() else {
        return;
    };
    let Some(response) = encoder.final_response() else {
        return;
    };
    if response["status"] == "failed" {
        return;
    }
    record.response = response.clone();
    record.history.push(encoder.assistant_turn().clone());
    store.put(record);
}
