//! Route aliases with `*` wildcards (`"claude-*"`, `"claude-haiku-*"`), so an agent's
//! built-in model names map to routes without one alias per name.

use super::names::other_spelling;
use super::{Inner, Route};

impl Inner {
    /// The route `model` names: the alias itself, else the alias spelled with or without
    /// the implied `:latest` tag ([`super::names`]), else the most specific wildcard alias
    /// that matches either spelling (the longest pattern; the first in name order among
    /// equals). Planning, task rules and bare-name checks all resolve aliases here.
    pub(crate) fn route_for(&self, model: &str) -> Option<&Route> {
        if let Some(route) = self.routes.get(model) {
            return Some(route);
        }
        let other = other_spelling(model);
        if let Some(route) = other.as_deref().and_then(|o| self.routes.get(o)) {
            return Some(route);
        }
        let matches = |alias: &str| {
            glob_matches(alias, model) || other.as_deref().is_some_and(|o| glob_matches(alias, o))
        };
        self.routes
            .iter()
            .filter(|(alias, _)| alias.contains('*') && matches(alias))
            .max_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| b.cmp(a)))
            .map(|(_, route)| route)
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (also
/// none) and everything else for itself. Linear in the lengths, no backtracking blow-up.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(glob_matches("claude-*", "claude-sonnet-4-5"));
        assert!(glob_matches("claude-*", "claude-"));
        assert!(!glob_matches("claude-*", "claud"));
        assert!(glob_matches("claude-*-4-5", "claude-haiku-4-5"));
        assert!(!glob_matches("claude-*-4-5", "claude-haiku-4-6"));
        assert!(glob_matches("*haiku*", "claude-3-5-haiku-latest"));
        assert!(glob_matches("a*a", "aa"));
        assert!(!glob_matches("a*a", "a"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }
}
