//! Tool policy by locality: the compiled `never_to_cloud` globs, global and per caller.

use std::collections::HashMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use switchyard_core::ChatRequest;

use crate::config::RouterConfig;
use crate::error::RouterError;

/// The `never_to_cloud` globs of a config, compiled once per router generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolPolicies {
    global: Option<GlobSet>,
    callers: HashMap<String, GlobSet>,
}

impl ToolPolicies {
    /// Compiles `policy.tools` and every `callers.<id>.tools`; refuses a bad glob.
    pub(crate) fn compile(config: &RouterConfig) -> Result<Self, RouterError> {
        let global = compile(
            "policy.tools.never_to_cloud",
            &config.policy.tools.never_to_cloud,
        )?;
        let mut callers = HashMap::new();
        for (caller, policy) in &config.callers {
            let Some(tools) = &policy.tools else { continue };
            let at = format!("callers.{caller}.tools.never_to_cloud");
            if let Some(set) = compile(&at, &tools.never_to_cloud)? {
                callers.insert(caller.clone(), set);
            }
        }
        Ok(Self { global, callers })
    }

    /// The first tool `request` offers that its caller's or the global policy keeps off
    /// cloud targets.
    pub(crate) fn cloud_tool<'r>(&self, request: &'r ChatRequest) -> Option<&'r str> {
        let caller = request
            .meta
            .caller
            .as_deref()
            .and_then(|c| self.callers.get(c));
        if self.global.is_none() && caller.is_none() {
            return None;
        }
        request.tool_names().find(|name| {
            self.global.as_ref().is_some_and(|g| g.is_match(name))
                || caller.is_some_and(|c| c.is_match(name))
        })
    }
}

/// Compiles tool-name globs (`None` for none); `at` names where they are written.
pub(crate) fn compile(at: &str, globs: &[String]) -> Result<Option<GlobSet>, RouterError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        let glob = Glob::new(g).map_err(|e| RouterError::InvalidToolGlob {
            at: at.to_owned(),
            glob: g.clone(),
            why: e.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| RouterError::InvalidToolGlob {
            at: at.to_owned(),
            glob: globs.join(", "),
            why: e.kind().to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use switchyard_core::{Message, ToolSpec};

    fn offering(names: &[&str], caller: Option<&str>) -> ChatRequest {
        let mut r = ChatRequest::new("chat", vec![Message::user("hi")]);
        r.meta.caller = caller.map(str::to_owned);
        r.tools = names
            .iter()
            .map(|n| ToolSpec {
                name: (*n).to_owned(),
                description: None,
                parameters: serde_json::Value::Null,
            })
            .collect();
        r
    }

    #[test]
    fn globs_match_globally_and_per_caller() {
        let config: RouterConfig = serde_json::from_value(serde_json::json!({
            "policy": { "tools": { "never_to_cloud": ["exec", "browser_*"] } },
            "callers": { "ci": { "tools": { "never_to_cloud": ["read_file"] } } }
        }))
        .unwrap();
        let p = ToolPolicies::compile(&config).expect("valid globs");
        assert_eq!(
            p.cloud_tool(&offering(&["search", "browser_open"], None)),
            Some("browser_open")
        );
        assert_eq!(p.cloud_tool(&offering(&["exec"], None)), Some("exec"));
        assert_eq!(
            p.cloud_tool(&offering(&["execute", "read_file"], None)),
            None
        );
        assert_eq!(
            p.cloud_tool(&offering(&["read_file"], Some("ci"))),
            Some("read_file")
        );
    }

    #[test]
    fn a_bad_glob_is_refused_with_where_it_is() {
        let mut config = RouterConfig::default();
        config.policy.tools.never_to_cloud = vec!["browser_[".to_owned()];
        let err = ToolPolicies::compile(&config).err().map(|e| e.to_string());
        assert!(
            err.is_some_and(
                |e| e.contains("policy.tools.never_to_cloud") && e.contains("browser_[")
            )
        );
    }
}
