//! Task rules of a route: compiled once per router generation, checked for loops, and
//! matched against a request (tools offered, the task it names, its estimated size).

use std::collections::BTreeMap;

use globset::GlobSet;
use switchyard_core::ChatRequest;

use crate::config::TaskRule;
use crate::error::RouterError;

/// One rule, ready to match.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// Where it is written (`chat.rules[0]`), for records and errors.
    pub(crate) label: String,
    tools: Option<GlobSet>,
    task: Option<String>,
    min_prompt_tokens: Option<u64>,
    /// The route it sends the request to.
    pub(crate) to: String,
}

impl CompiledRule {
    /// Whether every condition of the rule holds for `request` (with its estimated
    /// prompt size `prompt_tokens`).
    pub(crate) fn matches(&self, request: &ChatRequest, prompt_tokens: u64) -> bool {
        let tools = self
            .tools
            .as_ref()
            .is_none_or(|set| request.tool_names().any(|n| set.is_match(n)));
        let task = self
            .task
            .as_ref()
            .is_none_or(|t| request.meta.task.as_ref() == Some(t));
        let size = self
            .min_prompt_tokens
            .is_none_or(|min| prompt_tokens >= min);
        tools && task && size
    }
}

/// Compiles the rules of route `route`; `routes` are all route names, which `to` must be.
pub(crate) fn compile<V>(
    route: &str,
    rules: &[TaskRule],
    routes: &BTreeMap<String, V>,
) -> Result<Vec<CompiledRule>, RouterError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let label = format!("{route}.rules[{i}]");
            if rule.tools.is_empty() && rule.task.is_none() && rule.min_prompt_tokens.is_none() {
                return Err(RouterError::InvalidRule {
                    rule: label,
                    why: "it has no condition (tools, task or min_prompt_tokens)".to_owned(),
                });
            }
            if !routes.contains_key(&rule.to) {
                let why = format!("`to: {}` is not a route alias", rule.to);
                return Err(RouterError::InvalidRule { rule: label, why });
            }
            let tools = crate::tool_policy::compile(&format!("{label}.tools"), &rule.tools)?;
            Ok(CompiledRule {
                label,
                tools,
                task: rule.task.clone(),
                min_prompt_tokens: rule.min_prompt_tokens,
                to: rule.to.clone(),
            })
        })
        .collect()
}

/// Refuses rules that can send a request around in a circle (`a -> b -> a`, or a rule
/// to its own route). `edges`: each route's rule targets.
pub(crate) fn check_loops(edges: &BTreeMap<String, Vec<String>>) -> Result<(), RouterError> {
    // Depth-first search with colours; the path is the cycle's witness.
    let mut done: Vec<&str> = Vec::new();
    for start in edges.keys() {
        let mut path: Vec<&str> = Vec::new();
        visit(start, edges, &mut path, &mut done)?;
    }
    Ok(())
}

fn visit<'a>(
    node: &'a str,
    edges: &'a BTreeMap<String, Vec<String>>,
    path: &mut Vec<&'a str>,
    done: &mut Vec<&'a str>,
) -> Result<(), RouterError> {
    if done.contains(&node) {
        return Ok(());
    }
    if let Some(at) = path.iter().position(|p| *p == node) {
        let mut cycle: Vec<&str> = path[at..].to_vec();
        cycle.push(node);
        return Err(RouterError::RuleLoop(cycle.join(" -> ")));
    }
    path.push(node);
    for next in edges.get(node).into_iter().flatten() {
        visit(next, edges, path, done)?;
    }
    path.pop();
    done.push(node);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn loops_are_refused_with_the_cycle_and_chains_pass() {
        let ok = edges(&[
            ("chat", &["heavy", "small"]),
            ("heavy", &["long"]),
            ("small", &[]),
            ("long", &[]),
        ]);
        assert_eq!(check_loops(&ok), Ok(()));
        let looped = edges(&[("chat", &["heavy"]), ("heavy", &["chat"])]);
        let err = check_loops(&looped)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("chat -> heavy -> chat"), "{err}");
        let own = edges(&[("chat", &["chat"])]);
        assert!(matches!(check_loops(&own), Err(RouterError::RuleLoop(c)) if c == "chat -> chat"));
    }

    #[test]
    fn a_rule_without_a_condition_or_with_an_unknown_route_is_refused() {
        let routes: BTreeMap<String, ()> =
            [("chat".to_owned(), ()), ("heavy".to_owned(), ())].into();
        let bare = TaskRule {
            to: "heavy".to_owned(),
            ..TaskRule::default()
        };
        assert!(matches!(
            compile("chat", &[bare], &routes),
            Err(RouterError::InvalidRule { .. })
        ));
        let unknown = TaskRule {
            task: Some("x".to_owned()),
            to: "nowhere".to_owned(),
            ..TaskRule::default()
        };
        let err = compile("chat", &[unknown], &routes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("chat.rules[0]") && err.contains("nowhere"),
            "{err}"
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let routes: BTreeMap<String, ()> = [("heavy".to_owned(), ())].into();
        let rule = TaskRule {
            task: Some("summary".to_owned()),
            min_prompt_tokens: Some(2),
            to: "heavy".to_owned(),
            ..TaskRule::default()
        };
        let compiled = compile("chat", &[rule], &routes).unwrap_or_default();
        let mut r = ChatRequest::default();
        r.meta.task = Some("summary".to_owned());
        assert!(compiled.iter().all(|c| c.matches(&r, 2)));
        assert!(!compiled.iter().any(|c| c.matches(&r, 1)));
        r.meta.task = None;
        assert!(!compiled.iter().any(|c| c.matches(&r, 5)));
    }
}
