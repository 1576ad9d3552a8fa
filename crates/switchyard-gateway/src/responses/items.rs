//! Input items as `GET /v1/responses/{id}/input_items` lists them: each with an `id`, paged
//! with `order`, `limit`, `after` and `before` like OpenAI's list endpoints.

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
    #[serde(default)]
    before: Option<String>,
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
/// 20), after the item `after` and before the item `before` (both exclusive, in that order).
/// With `before` and no `after`, the page is the `limit` items right before `before` (paging
/// backwards), and `has_more` says whether there are more before them.
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
    let position = |cursor: &str, name: &str| {
        ordered
            .iter()
            .position(|v| id_of(v) == Some(cursor))
            .ok_or_else(|| format!("`{name}`: no input item `{cursor}` in this response"))
    };
    let start = match page.after.as_deref() {
        None => 0,
        Some(after) => position(after, "after")? + 1,
    };
    let end = match page.before.as_deref() {
        None => ordered.len(),
        Some(before) => position(before, "before")?,
    };
    let rest = ordered.get(start..end.max(start)).unwrap_or_default();
    let window = if page.before.is_some() && page.after.is_none() {
        rest.get(rest.len().saturating_sub(limit)..)
    } else {
        rest.get(..limit.min(rest.len()))
    };
    let data: Vec<&Value> = window.unwrap_or_default().to_vec();
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
            before: None,
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

    #[test]
    fn before_pages_backwards_in_the_listing_order() {
        let items = with_ids(
            "resp_x",
            (0..5).map(|i| json!({"id": format!("m{i}")})).collect(),
        );
        let ids = |page: &ItemList<'_>| -> Vec<String> {
            page.data
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let page = |order: &str, limit: Option<&str>, after: Option<&str>, before: &str| Page {
            order: Some(order.into()),
            limit: limit.map(Into::into),
            after: after.map(Into::into),
            before: Some(before.into()),
        };
        let asc = list(&items, &page("asc", None, None, "m3")).unwrap();
        assert_eq!(ids(&asc), ["m0", "m1", "m2"]);
        assert!(!asc.has_more);
        let desc = list(&items, &page("desc", None, None, "m3")).unwrap();
        assert_eq!(ids(&desc), ["m4"]);
        let near = list(&items, &page("asc", Some("2"), None, "m4")).unwrap();
        assert_eq!(ids(&near), ["m2", "m3"]);
        assert!(near.has_more);
        let between = list(&items, &page("asc", Some("1"), Some("m0"), "m3")).unwrap();
        assert_eq!(ids(&between), ["m1"]);
        assert!(between.has_more);
        let crossed = list(&items, &page("asc", None, Some("m3"), "m1")).unwrap();
        assert!(crossed.data.is_empty());
        let unknown = list(&items, &page("asc", None, None, "nope")).unwrap_err();
        assert!(unknown.contains("`before`"), "{unknown}");
    }
}
