//! Model names that name the same model. Ollama's model names take an optional tag that
//! defaults to `latest` (its `docs/api.md`, "Model names"), so `llama3` and
//! `llama3:latest` are one model; `llama3:8b` is another. Route aliases, provider catalogs
//! and the gateway's catalog all match names through [`same_model`].

/// The tag a name without one has.
const LATEST: &str = ":latest";

/// Whether `name` has no tag: its last path segment (after the last `/`; a registry's
/// `host:port/` is not a tag) is not empty and holds no `:`.
fn untagged(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    !last.is_empty() && !last.contains(':')
}

/// Whether `tagged` is `bare` with the implied `:latest` written out.
fn latest_of(tagged: &str, bare: &str) -> bool {
    tagged.strip_suffix(LATEST) == Some(bare) && untagged(bare)
}

/// Whether the model names `a` and `b` name the same model: equal, or equal once a missing
/// tag is read as `latest`. Only the `latest` tag is implied (`x:7b` is not `x`).
pub(crate) fn same_model(a: &str, b: &str) -> bool {
    a == b || latest_of(a, b) || latest_of(b, a)
}

/// The other spelling of `name` under the implied tag (`x` for `x:latest`, `x:latest` for
/// `x`), if it has one.
pub(crate) fn other_spelling(name: &str) -> Option<String> {
    match name.strip_suffix(LATEST) {
        Some(bare) if untagged(bare) => Some(bare.to_owned()),
        Some(_) => None,
        None => untagged(name).then(|| format!("{name}{LATEST}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{other_spelling, same_model};

    #[test]
    fn the_latest_tag_is_implied() {
        assert!(same_model("chat", "chat:latest"));
        assert!(same_model("chat:latest", "chat"));
        assert!(same_model("chat", "chat"));
        assert!(same_model("up/chat", "up/chat:latest"));
        assert!(same_model(
            "registry.local:5000/library/m",
            "registry.local:5000/library/m:latest"
        ));
        assert_eq!(other_spelling("chat:latest").as_deref(), Some("chat"));
        assert_eq!(other_spelling("chat").as_deref(), Some("chat:latest"));
        assert_eq!(
            other_spelling("registry.local:5000/m").as_deref(),
            Some("registry.local:5000/m:latest")
        );
    }

    #[test]
    fn no_other_tag_is_implied() {
        assert!(!same_model("chat:7b", "chat"));
        assert!(!same_model("chat", "chat:7b"));
        assert!(!same_model("chat:7b", "chat:latest"));
        assert!(!same_model("chat:7b:latest", "chat:7b"));
        assert!(!same_model(":latest", ""));
        assert!(!same_model("up/:latest", "up/"));
        assert!(!same_model("chat-latest", "chat"));
        assert_eq!(other_spelling("chat:7b"), None);
        assert_eq!(other_spelling(":latest"), None);
        assert_eq!(other_spelling("up/"), None);
        assert_eq!(other_spelling(""), None);
    }
}
