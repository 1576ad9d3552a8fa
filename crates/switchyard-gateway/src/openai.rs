//! The OpenAI API: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_router::{CatalogEntry, CatalogKind};

use crate::api::{Api, ApiError};
use crate::auth::Caller;
use crate::gateway::Shared;
use crate::{catalog, chat};

/// `POST /v1/chat/completions`.
pub(crate) fn chat_completions(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> impl Future<Output = Response> + Send {
    chat::handle(shared, Api::OpenAi, request)
}

/// `GET /v1/models`: route aliases and exact `provider/model` refs.
pub(crate) async fn list_models(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let entries = catalog::visible_entries(&shared, &caller).await;
    let data: Vec<ModelObject<'_>> = entries.iter().map(ModelObject::from).collect();
    catalog::json(&ModelList {
        object: "list",
        data,
    })
}

/// `GET /v1/models/{id}` (the SDKs' `models.retrieve`).
pub(crate) async fn get_model(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    model: Result<Path<String>, PathRejection>,
) -> Response {
    retrieve(&shared, &caller, Api::OpenAi, model, |entry| {
        catalog::json(&ModelObject::from(entry))
    })
    .await
}

/// `GET /v1/models/{id}` for `api`: the caller's catalog entry named in the path, answered
/// by `answer`, else `api`'s `model_not_found` (a 400 when the path is not a model id).
pub(crate) async fn retrieve(
    shared: &Shared,
    caller: &Caller,
    api: Api,
    model: Result<Path<String>, PathRejection>,
    answer: impl FnOnce(&CatalogEntry) -> Response,
) -> Response {
    let model = match model {
        Ok(Path(model)) => model,
        Err(rejection) => {
            return ApiError::invalid(
                api,
                format!("invalid model id in the path: {}", rejection.body_text()),
            )
            .into_response();
        }
    };
    match catalog::lookup(shared, caller, &model).await {
        Some(entry) => answer(&entry),
        None => catalog::json_or_not_found(api, None::<()>, || {
            format!("model `{model}` not found; GET /v1/models lists the models served here")
        }),
    }
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelObject<'a>>,
}

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

impl<'a> From<&'a CatalogEntry> for ModelObject<'a> {
    fn from(entry: &'a CatalogEntry) -> Self {
        ModelObject {
            id: &entry.id,
            object: "model",
            // Catalogs do not know when a model was made; 0 is what several
            // OpenAI-compatible servers send too.
            created: 0,
            owned_by: if entry.kind == CatalogKind::Route {
                "switchyard"
            } else {
                &entry.provider
            },
        }
    }
}
