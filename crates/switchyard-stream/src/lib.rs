//! Sans-IO codecs: NDJSON and SSE framing, Ollama and OpenAI chunk decoders into
//! [`switchyard_core::ChatEvent`], tool-call accumulation, recovery of tool calls written as
//! text, and encoders back into Ollama NDJSON and OpenAI SSE.
//!
//! Nothing is public yet; see the workspace README for the plan.
