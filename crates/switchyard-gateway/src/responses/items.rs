//! Input items as `GET /v1/responses/{id}/input_items` lists them: each with an `id`, paged
//! with `order`, `limit` and `after` like OpenAI's list endpoints.

use axum::body::Body;
use axum::response::Response;
use http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::JSON;

/// Gives every input item without an `id` one (`<kind>_<response>_in<i>`).
pub(crate) fn with_ids(response_id: &str, mut items: Vec<Value>) -> Vec<Value> {
    let suffix = response_id.strip_prefix("resp_").unwrap_or(response_id);
    for (i, item) in items.iter_mut().enumerate() {
        let Some(obj) = item.as_object_mut() else {
            continue;
        };
        if obj.get("id").is_none_or(|id| !id.is_string()) {
            let prefix = match obj.get("type").and_then(Value::as_str) {
                Some("function_call_output") => "fco",
                Some("custom_tool_call_output") => "ctco",
                Some("function_call") => "fc",
                Some("custom_tool_call") => "ctc",
                Some("reasoning") => "rs",
                _ => "msg",
            };
            obj.insert("id".into(), json!(format!("{prefix}_{suffix}_in{i}")));
        }
        if !obj.contains_key("type") {
            obj.insert("type".into(), json!("message"));
        }
    }
    items
}

/// The paging parameters (all optional; bad values are refused with a 400).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Page {
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ItemList<'a> {
    object: &'static str,
    data: Vec<&'a Value>,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
    has_more: bool,
}

/// One page of `items`: newest first unless `order=asc`, at most `limit` (1-100, default
/// 20), after the item `after`.
pub(crate) fn list<'a>(items: &'a [Value], page: &Page) -> Result<ItemList<'a>, String> {
    let limit = match page.limit.as_deref() {
        None => 20,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| format!("`limit` must be a number from 1 to 100, got `{s}`"))?,
    };
    let mut ordered: Vec<&Value> = items.iter().collect();
    match page.order.as_deref() {
        None | Some("desc") => ordered.reverse(),
        Some("asc") => {}
        Some(other) => return Err(format!("`order` must be `asc` or `desc`, got `{other}`")),
    }
    let id_of = |v: &'a Value| v.get("id").and_then(Value::as_str);
    let start = match page.after.as_deref() {
        None => 0,
        Some(after) => ordered
            .iter()
            .position(|v| id_of(v) == Some(after))
            .map(|p| p + 1)
            .ok_or_else(|| format!("`after`: no input item `{after}` in this response"))?,
    };
    let rest = ordered.get(start..).unwrap_or_default();
    let data: Vec<&Value> = rest.iter().take(limit).copied().collect();
    Ok(ItemList {
        object: "list",
        first_id: data.first().and_then(|v| id_of(v)),
        last_id: data.last().and_then(|v| id_of(v)),
        has_more: rest.len() > data.len(),
        data,
    })
}

/// A 200 JSON answer.
pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    json_bytes(serde_json::to_vec(value).unwrap_or_default())
}

/// A 200 with `body`, JSON text already written.
pub(crate) fn json_bytes(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(CONTENT_TYPE, JSON);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_given_and_pages_follow_order_limit_after() {
        let items = with_ids(
            "resp_x",
            vec![
                json!({"role": "user", "content": "a"}),
                json!({"type": "function_call_output", "call_id": "c", "output": "b"}),
                json!({"type": "message", "id": "mine", "role": "user", "content": "c"}),
            ],
        );
        assert_eq!(items[0]["id"], "msg_x_in0");
        assert_eq!(items[0]["type"], "message");
        assert_eq!(items[1]["id"], "fco_x_in1");
        assert_eq!(items[2]["id"], "mine");

        let page = list(&items, &Page::default()).unwrap();
        assert_eq!(page.first_id, Some("mine"));
        assert!(!page.has_more);
        let asc = Page {
            order: Some("asc".into()),
            limit: Some("1".into()),
            after: Some("msg_x_in0".into()),
        };
        let page = list(&items, &asc).unwrap();
        assert_eq!(page.data.len(), 1);
        assert_eq!(page.first_id, Some("fco_x_in1"));
        assert!(page.has_more);
        let bad = Page {
            limit: Some("0".into()),
            ..Page::default()
        };
        assert!(list(&items, &bad).unwrap_err().contains("limit"));
    }
}
