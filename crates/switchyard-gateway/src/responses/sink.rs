//! The Responses encoder of one answer, keeping the response in the store once it is
//! complete (`store: true`); failed responses are not kept.

use std::sync::Arc;

use serde_json::Value;
use switchyard_core::{ChatEvent, ProviderError};
use switchyard_stream::responses::ResponsesStreamEncoder;

use super::store::{ResponseStore, StoredResponse};

/// A response to keep once it is complete: the record without the response object and
/// without the answer's turn (both added at the end).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) store: Arc<ResponseStore>,
    pub(crate) record: StoredResponse,
}

/// The Responses stream encoder plus the store write at its end.
#[derive(Debug)]
pub(crate) struct ResponsesSink {
    encoder: ResponsesStreamEncoder,
    pending: Option<Pending>,
}

impl ResponsesSink {
    pub(crate) fn new(encoder: ResponsesStreamEncoder, pending: Option<Pending>) -> Self {
        Self { encoder, pending }
    }

    pub(crate) fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        self.encoder.encode(event, out);
        if self.encoder.is_done() {
            self.persist();
        }
    }

    pub(crate) fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        self.pending = None;
        self.encoder.encode_error(err, out);
    }

    pub(crate) fn is_done(&self) -> bool {
        self.encoder.is_done()
    }

    /// The whole response object, once the answer has ended.
    pub(crate) fn final_response(&self) -> Option<&Value> {
        self.encoder.final_response()
    }

    fn persist(&mut self) {
        let Some(Pending { store, mut record }) = self.pending.take() else {
            return;
        };
        let Some(response) = self.encoder.final_response() else {
            return;
        };
        if response["status"] == "failed" {
            return;
        }
        record.response = response.clone();
        record.history.push(self.encoder.assistant_turn().clone());
        store.put(record);
    }
}
