//! `POST /v1/responses/compact`, which Codex calls to shorten a long session: answered by
//! the routed model itself. The gateway asks it (through the same router, policy and
//! accounting as any request) for a summary of the conversation, and answers with a
//! `response.compaction` object whose `output` is one user message holding that summary.
//! The compacted history is plain text, so any target can read it: a compacted session
//! needs no pinning to the target that wrote it. A target that serves the Responses API
//! itself (`responses: true`) gets the client's request natively at `/responses/compact`
//! and its answer goes back as it is (OpenAI's encrypted compaction item included).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_core::{Message, ResponsesEndpoint};
use switchyard_stream::responses::ResponsesStreamEncoder;

use super::native::NativeSink;
use super::{API, ResponsesSink, collect, final_response, items, passed_through, prepare};
use crate::api::ApiError;
use crate::body::TokenAccount;
use crate::chat;
use crate::gateway::Shared;

/// What the model is asked at the end of the conversation.
const COMPACT_PROMPT: &str = "Summarize the conversation so far so that it can be continued \
from the summary alone: the user's goals and instructions, decisions made, work done (files, \
commands and their results), open questions and the next steps. Write only the summary.";

/// How the summary is handed back as the start of the compacted conversation.
const SUMMARY_HEAD: &str = "Summary of the conversation so far:\n\n";

/// `POST /v1/responses/compact`.
pub(crate) async fn compact(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match run(shared, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn run(shared: Arc<Shared>, request: Request) -> Result<Response, ApiError> {
    let mut p = prepare(&shared, request, false).await?;
    p.call.endpoint = ResponsesEndpoint::Compact;
    let chat_req = &mut p.chat;
    chat_req.tools.clear();
    chat_req.tool_choice = None;
    chat_req.parallel_tool_calls = None;
    chat_req.response_format = None;
    chat_req.stream = false;
    chat_req.messages.push(Message::user(COMPACT_PROMPT));
    let mut routed = p
        .router
        .route_with(&p.chat, &p.call)
        .await
        .map_err(|failure| crate::skipped::refusal(API, failure))?;
    let account = TokenAccount::new(&shared, p.chat.meta.caller.as_deref())
        .with_prompt_estimate(|| switchyard_router::estimated_prompt_tokens(&p.chat));
    if p.call.went_native() {
        let sink = ResponsesSink::Native(NativeSink::new(p.call.frames().clone(), None));
        return passed_through(routed, sink, &account, p.started).await;
    }
    let id = p.head.id.replacen("resp_", "cmp_", 1);
    let created_at = p.head.created_at;
    let mut sink = ResponsesSink::new(ResponsesStreamEncoder::new(p.head), None);
    collect(&mut routed, &mut sink, &account).await?;
    let response = final_response(&sink)?;
    let summary: String = response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().into_iter().flatten())
        .filter_map(|part| part["text"].as_str())
        .collect();
    let object = json!({
        "id": id,
        "object": "response.compaction",
        "created_at": created_at,
        "output": [{
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": format!("{SUMMARY_HEAD}{summary}")}],
        }],
        "usage": response["usage"],
    });
    let mut answer = items::json(&object);
    chat::routing_headers(&mut answer, &routed, p.started, API);
    Ok(answer)
}
