//! The headers every routed answer carries, kept out of its header map until the head is
//! written: the routing headers ([`RoutingHead`]: `x-switchyard-target`, `-route-reason`,
//! `-overhead-ms`, `-attempts`, `-skipped`) and the request id.
//!
//! They ride in the answer's extensions as one [`AnswerHead`]. The HTTP/1.1 fast path
//! ([`crate::h1_fast`]) writes them straight into the head it sends; every other way out
//! (the router's front, which hyper and embedders see) moves them into the header map
//! first ([`into_header_map`]), so an answer carries the same headers whichever path
//! writes it. Their names are custom, so each hashed insert into a `HeaderMap` hashed the
//! name byte by byte: five of them cost about 1,300 instructions per request (callgrind,
//! `bench/instructions.sh`), the extension one small allocation.
//!
//! The routing headers are set only through [`RoutingHead`]; nothing else in the gateway
//! writes them into an answer's map, so the fast path never has both.

use axum::response::Response;
use http::header::Entry;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::chat::{ATTEMPTS_HEADER, OVERHEAD_HEADER, ROUTE_REASON_HEADER, TARGET_HEADER};
use crate::skipped::SKIPPED_HEADER;
use crate::telemetry::{REQUEST_ID_ALIASES, REQUEST_ID_HEADER};

/// The routing headers of one answer, as values (see `chat::routing_head`).
#[derive(Debug, Clone)]
pub(crate) struct RoutingHead {
    /// `provider/model`; `None` when a part cannot be a header value.
    pub(crate) target: Option<HeaderValue>,
    pub(crate) reason: HeaderValue,
    pub(crate) overhead: HeaderValue,
    pub(crate) attempts: HeaderValue,
    /// The targets skipped, when there were any.
    pub(crate) skipped: Option<HeaderValue>,
}

impl RoutingHead {
    /// Calls `put` with each header, in the order they go out.
    pub(crate) fn for_each(&self, mut put: impl FnMut(HeaderName, &HeaderValue)) {
        if let Some(target) = &self.target {
            put(TARGET_HEADER, target);
        }
        put(ROUTE_REASON_HEADER, &self.reason);
        put(OVERHEAD_HEADER, &self.overhead);
        put(ATTEMPTS_HEADER, &self.attempts);
        if let Some(skipped) = &self.skipped {
            put(SKIPPED_HEADER, skipped);
        }
    }

    /// Puts the headers in `headers`, replacing any of the same names.
    pub(crate) fn insert_into(&self, headers: &mut HeaderMap) {
        self.for_each(|name, value| {
            headers.insert(name, value.clone());
        });
    }

    /// Gives `response` these routing headers (kept in its [`AnswerHead`]).
    pub(crate) fn attach(self, response: &mut Response) {
        head_mut(response).routing = Some(self);
    }
}

/// The headers an answer carries outside its header map (see the module doc).
#[derive(Debug, Clone, Default)]
pub(crate) struct AnswerHead {
    /// The routing headers, when the answer was routed.
    pub(crate) routing: Option<RoutingHead>,
    /// The request's id; written only when the header map has none.
    pub(crate) request_id: Option<HeaderValue>,
}

/// The answer's [`AnswerHead`], if it has one.
pub(crate) fn of(response: &Response) -> Option<&AnswerHead> {
    response.extensions().get::<AnswerHead>()
}

/// Sets the request id `response` carries outside its header map.
pub(crate) fn set_request_id(response: &mut Response, id: HeaderValue) {
    head_mut(response).request_id = Some(id);
}

/// Moves `response`'s [`AnswerHead`] into its header map: the routing headers replace any
/// of the same names, the request id goes in only when the map has none.
pub(crate) fn into_header_map(response: &mut Response) {
    let Some(head) = response.extensions_mut().remove::<AnswerHead>() else {
        return;
    };
    let headers = response.headers_mut();
    if let Some(routing) = &head.routing {
        routing.insert_into(headers);
    }
    if let Some(id) = head.request_id {
        insert_request_id(headers, id);
    }
}

/// Puts the request id `id` in `headers` unless they already carry one, and the id they
/// then carry under each of [`REQUEST_ID_ALIASES`] they lack (clones of one value: a
/// reference count each, no copy).
pub(crate) fn insert_request_id(headers: &mut HeaderMap, id: HeaderValue) {
    let id = match headers.entry(REQUEST_ID_HEADER) {
        Entry::Vacant(slot) => slot.insert(id).clone(),
        Entry::Occupied(slot) => slot.get().clone(),
    };
    let [x_request_id, request_id] = REQUEST_ID_ALIASES;
    if let Entry::Vacant(slot) = headers.entry(x_request_id) {
        slot.insert(id.clone());
    }
    if let Entry::Vacant(slot) = headers.entry(request_id) {
        slot.insert(id);
    }
}

fn head_mut(response: &mut Response) -> &mut AnswerHead {
    response
        .extensions_mut()
        .get_or_insert_default::<AnswerHead>()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn routing() -> RoutingHead {
        RoutingHead {
            target: Some(HeaderValue::from_static("local/m")),
            reason: HeaderValue::from_static("primary"),
            overhead: HeaderValue::from_static("0.123"),
            attempts: HeaderValue::from_static("1"),
            skipped: None,
        }
    }

    #[test]
    fn the_head_moves_into_the_map_and_leaves_the_extensions() {
        let mut response = Response::new(Body::empty());
        routing().attach(&mut response);
        set_request_id(&mut response, HeaderValue::from_static("req_1"));
        assert!(response.headers().is_empty(), "nothing in the map before");
        into_header_map(&mut response);
        let h = response.headers();
        assert_eq!(h[TARGET_HEADER], "local/m");
        assert_eq!(h[ROUTE_REASON_HEADER], "primary");
        assert_eq!(h[OVERHEAD_HEADER], "0.123");
        assert_eq!(h[ATTEMPTS_HEADER], "1");
        assert!(h.get(SKIPPED_HEADER).is_none());
        assert_eq!(h[REQUEST_ID_HEADER], "req_1");
        for alias in REQUEST_ID_ALIASES {
            assert_eq!(h[alias], "req_1");
        }
        assert!(of(&response).is_none(), "moved, not copied");
    }

    #[test]
    fn an_id_already_in_the_map_stays_and_routing_replaces() {
        let mut response = Response::new(Body::empty());
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from_static("mine"));
        response
            .headers_mut()
            .insert(ROUTE_REASON_HEADER, HeaderValue::from_static("stale"));
        set_request_id(&mut response, HeaderValue::from_static("req_2"));
        routing().attach(&mut response);
        into_header_map(&mut response);
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "mine");
        for alias in REQUEST_ID_ALIASES {
            assert_eq!(response.headers()[alias], "mine", "the id that goes out");
        }
        assert_eq!(response.headers()[ROUTE_REASON_HEADER], "primary");
        assert_eq!(
            response
                .headers()
                .get_all(ROUTE_REASON_HEADER)
                .iter()
                .count(),
            1
        );
    }

    #[test]
    fn skipped_targets_come_last_and_a_target_that_is_no_value_is_left_out() {
        let mut head = routing();
        head.target = None;
        head.skipped = Some(HeaderValue::from_static("cloud/x=budget_exceeded"));
        let mut names = Vec::new();
        head.for_each(|name, _| names.push(name));
        assert_eq!(
            names,
            [
                ROUTE_REASON_HEADER,
                OVERHEAD_HEADER,
                ATTEMPTS_HEADER,
                SKIPPED_HEADER
            ]
        );
    }

    #[test]
    fn an_answer_without_a_head_is_left_alone() {
        let mut response = Response::new(Body::empty());
        into_header_map(&mut response);
        assert!(response.headers().is_empty());
    }
}
