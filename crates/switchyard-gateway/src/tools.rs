//! `GET /admin/tools[?caller=ID]` (admin keys; without keys configured, the loopback
//! callers the server admits): each caller's recent tool set, tool-set shrinks and unknown
//! tool calls, as JSON `{"callers": [...]}` (`switchyard tools` renders it). The router
//! keeps the history, bounded and across reloads.

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchyard_core::{ErrorKind, ProviderError};
use switchyard_router::CallerTools;

use crate::api::{Api, ApiError};
use crate::auth::Caller;
use crate::gateway::Shared;

/// The query of `/admin/tools`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolsQuery {
    /// Only this caller.
    caller: Option<String>,
}

#[derive(Serialize)]
struct ToolsAnswer {
    callers: Vec<CallerTools>,
}

/// `GET /admin/tools`.
pub(crate) async fn tools(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ToolsQuery>,
) -> Response {
    if caller.0.as_ref().is_some_and(|k| !k.admin) {
        return ApiError::new(
            Api::OpenAi,
            ProviderError::new(
                ErrorKind::PolicyBlocked,
                "the tool report needs an admin key (`admin: true` in the key's config)",
            ),
        )
        .into_response();
    }
    let router = shared.router.load_full();
    let callers = router.tool_report(query.caller.as_deref());
    crate::catalog::json(&ToolsAnswer { callers })
}
