//! Interleaved tool calls: an OpenAI-compatible upstream may stream several calls at once,
//! their argument fragments interleaved, and end them only at the finish. Anthropic's
//! stream needs one block after another, so while a `tool_use` block is open, a later
//! call (and any other content that comes while calls interleave) is held, bounded, and
//! written as its own block once the open block closes.

use switchyard_core::{ChatEvent, MAX_OPAQUE_EVENTS, MAX_TOOL_ARGUMENTS_BYTES, MAX_TOOL_CALLS};

use super::{AnthropicStreamEncoder, Block, Delta, delta, stop};

/// Something held while a `tool_use` block is open.
#[derive(Debug)]
pub(super) enum Held {
    /// A later call: its start, the arguments so far, whether it ended.
    Call {
        index: u32,
        id: String,
        name: String,
        arguments: String,
        ended: bool,
    },
    /// Other content that would have opened a block (text, thinking, pass-through).
    Event(ChatEvent),
}

impl AnthropicStreamEncoder {
    /// Whether later content is being held (calls interleave).
    pub(super) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Holds a call that starts while another call's block is open.
    pub(super) fn hold_call(&mut self, index: u32, id: &str, name: &str, out: &mut Vec<u8>) {
        let calls = self.held_calls() + self.closed_calls.len() + self.open_calls.len();
        if calls >= MAX_TOOL_CALLS {
            let msg = format!("more than {MAX_TOOL_CALLS} tool calls in one answer");
            self.fail(&msg, out);
            return;
        }
        if !self.add_held_bytes(id.len() + name.len()) {
            let msg = format!(
                "tool call index {index} started while {MAX_TOOL_ARGUMENTS_BYTES} bytes of other tool calls were held"
            );
            self.fail(&msg, out);
            return;
        }
        self.held.push(Held::Call {
            index,
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
            ended: false,
        });
        self.any_call = true;
    }

    /// Whether `index` is a held call.
    pub(super) fn is_held_call(&self, index: u32) -> bool {
        self.held
            .iter()
            .any(|h| matches!(h, Held::Call { index: i, .. } if *i == index))
    }

    /// Adds a fragment to a held call; returns `false` when `index` is not held. Past the
    /// bound on held bytes, the stream fails as for a call continued after its block closed.
    pub(super) fn hold_fragment(&mut self, index: u32, fragment: &str, out: &mut Vec<u8>) -> bool {
        if !self.is_held_call(index) {
            return false;
        }
        if !self.add_held_bytes(fragment.len()) {
            let msg =
                format!("tool call index {index} continued after another content block began");
            self.fail(&msg, out);
            return true;
        }
        for h in &mut self.held {
            if let Held::Call {
                index: i,
                arguments,
                ..
            } = h
            {
                if *i == index {
                    arguments.push_str(fragment);
                }
            }
        }
        true
    }

    /// Marks a held call ended; returns `false` when `index` is not held.
    pub(super) fn hold_end(&mut self, index: u32) -> bool {
        let mut found = false;
        for h in &mut self.held {
            if let Held::Call {
                index: i, ended, ..
            } = h
            {
                if *i == index {
                    *ended = true;
                    found = true;
                }
            }
        }
        found
    }

    /// Holds an event that would open a block while calls interleave.
    pub(super) fn hold_event(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        let item = Held::Event(event.clone());
        if self.held.len() >= MAX_OPAQUE_EVENTS || !self.add_held_bytes(held_len(&item)) {
            let msg = format!(
                "more than {MAX_OPAQUE_EVENTS} events or {MAX_TOOL_ARGUMENTS_BYTES} bytes held while tool calls interleave"
            );
            self.fail(&msg, out);
            return;
        }
        self.held.push(item);
    }

    /// Writes what was held, in order, once the open block closed: each call as its own
    /// block (start, one `input_json_delta` with the arguments so far). A call that has
    /// not ended stays open (its fragments then stream live) and what follows it stays
    /// held, unless `finishing`, when every block is closed.
    pub(super) fn release_held(&mut self, finishing: bool, out: &mut Vec<u8>) {
        let mut queue = std::mem::take(&mut self.held).into_iter();
        self.held_bytes = 0;
        while let Some(item) = queue.next() {
            if self.done {
                return;
            }
            match item {
                Held::Call {
                    index,
                    id,
                    name,
                    arguments,
                    ended,
                } => {
                    self.close_run(out);
                    let empty = serde_json::Map::new();
                    let block = self.open_block(
                        out,
                        &Block::ToolUse {
                            id: &id,
                            name: &name,
                            input: (&empty).into(),
                        },
                    );
                    if !arguments.is_empty() {
                        let partial_json = arguments.as_str();
                        delta(out, block, &Delta::InputJson { partial_json });
                    }
                    if ended || finishing {
                        stop(out, block);
                        self.closed_calls.push(index);
                    } else {
                        self.open_calls.push((index, block));
                        self.held = queue.collect();
                        self.held_bytes = self.held.iter().map(held_len).sum();
                        return;
                    }
                }
                Held::Event(event) => self.encode(&event, out),
            }
        }
    }

    fn held_calls(&self) -> usize {
        self.held
            .iter()
            .filter(|h| matches!(h, Held::Call { .. }))
            .count()
    }

    /// Counts `n` more held bytes; `false` past the bound.
    fn add_held_bytes(&mut self, n: usize) -> bool {
        match self.held_bytes.checked_add(n) {
            Some(total) if total <= MAX_TOOL_ARGUMENTS_BYTES => {
                self.held_bytes = total;
                true
            }
            _ => false,
        }
    }
}

/// The bytes a held item counts for.
fn held_len(h: &Held) -> usize {
    match h {
        Held::Call {
            id,
            name,
            arguments,
            ..
        } => id.len() + name.len() + arguments.len(),
        Held::Event(ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text }) => {
            text.len()
        }
        Held::Event(ChatEvent::ThinkingSignature { signature }) => signature.len(),
        Held::Event(ChatEvent::RedactedThinking { data }) => data.len(),
        Held::Event(ChatEvent::Opaque { json, .. }) => json.len(),
        Held::Event(_) => 0,
    }
}
