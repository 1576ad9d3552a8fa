//! The `x-switchyard-skipped` response header: the targets the plan left out (capability,
//! tool policy, context window, privacy, budget, health, ...) with their reason codes, so a
//! client sees why its request did not go where it expected. `x-switchyard-route-reason`
//! keeps saying why the serving target served.

use http::{HeaderName, HeaderValue};
use switchyard_router::{RouteFailure, SkippedTarget};

use crate::api::{Api, ApiError};

/// Response header: `target=reason_code, ...` for every target the plan skipped (on served
/// answers and on refusals); absent when none was. At most [`MAX_SKIPPED_HEADER_BYTES`]; entries that do not fit are
/// summed up as `+N more`.
pub const SKIPPED_HEADER: HeaderName = HeaderName::from_static("x-switchyard-skipped");

/// The longest `x-switchyard-skipped` value (the `+N more` tail included).
pub const MAX_SKIPPED_HEADER_BYTES: usize = 1024;

/// Room kept for the `, +N more` tail.
const TAIL_ROOM: usize = 16;

/// The header value for `skipped`, or `None` when nothing was skipped (or a target name
/// holds a byte a header may not carry).
pub(crate) fn skipped_header(skipped: &[SkippedTarget]) -> Option<HeaderValue> {
    if skipped.is_empty() {
        return None;
    }
    let mut value = String::new();
    for (i, s) in skipped.iter().enumerate() {
        let entry = format!("{}={}", s.target, s.reason.as_str());
        let sep = if value.is_empty() { "" } else { ", " };
        if value.len() + sep.len() + entry.len() > MAX_SKIPPED_HEADER_BYTES - TAIL_ROOM {
            value.push_str(&format!("{sep}+{} more", skipped.len() - i));
            break;
        }
        value.push_str(sep);
        value.push_str(&entry);
    }
    HeaderValue::from_str(&value).ok()
}

/// A request no target served, answered in `api`'s error shape with the skipped targets in
/// the header.
pub(crate) fn refusal(api: Api, failure: RouteFailure) -> ApiError {
    let skipped = skipped_header(&failure.skipped).map(Box::new);
    let mut error = ApiError::new(api, failure.into_provider_error());
    error.skipped = skipped;
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::Locality;
    use switchyard_router::{ReasonCode, TargetRef};

    fn skipped(provider: &str, reason: ReasonCode) -> SkippedTarget {
        SkippedTarget {
            target: TargetRef {
                provider: provider.into(),
                model: "m".into(),
                locality: Locality::Local,
            },
            reason,
        }
    }

    #[test]
    fn lists_target_and_reason_and_is_absent_when_nothing_was_skipped() {
        assert!(skipped_header(&[]).is_none());
        let v = skipped_header(&[
            skipped("small", ReasonCode::ModelLacksTools),
            skipped("cloud", ReasonCode::ToolNeverToCloud),
        ])
        .unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "small/m=model_lacks_tools, cloud/m=tool_never_to_cloud"
        );
    }

    #[test]
    fn a_long_list_is_cut_with_a_count_of_the_rest() {
        let many: Vec<_> = (0..200)
            .map(|i| skipped(&format!("provider-{i}"), ReasonCode::ContextWindowExceeded))
            .collect();
        let v = skipped_header(&many).unwrap();
        let s = v.to_str().unwrap();
        assert!(s.len() <= MAX_SKIPPED_HEADER_BYTES, "{}", s.len());
        assert!(s.starts_with("provider-0/m=context_window_exceeded, "));
        let shown = s.matches("context_window_exceeded").count();
        assert!(s.ends_with(&format!(", +{} more", 200 - shown)), "{s}");
    }
}
