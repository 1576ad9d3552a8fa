//! `switchyard route explain`: how a request would be routed and why, without sending it.

use std::fmt::Write as _;
use std::path::PathBuf;

use switchyard_core::{ChatRequest, Message, PrivacyClass, ToolSpec};
use switchyard_gateway::ApiKey;
use switchyard_router::Explanation;

use crate::cli::ExplainArgs;
use crate::config::build;
use crate::serve::EXIT_CONFIG;
use crate::wiring;

/// Prints the plan; exit code 0 when something would serve the request, 1 when not, 2 when
/// the config is broken or `--caller` names no key.
pub(crate) async fn run(config_path: Option<PathBuf>, args: &ExplainArgs) -> u8 {
    let (config, built) = match wiring::load_router(config_path.as_ref()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // The key `--caller` names, as the gateway sees it.
    let keys = build::gateway_config(&config.file).keys;
    let key = match args.caller.as_deref().map(|id| caller_key(&keys, id)) {
        None => None,
        Some(Ok(key)) => Some(key),
        Some(Err(message)) => {
            errln!("switchyard: {message}");
            return EXIT_CONFIG;
        }
    };
    // Bare model names are found in the discovered catalogs, and what a model can do
    // (tools) is known from them: fill them first.
    let offers_tools = args.tools || !args.tool.is_empty();
    let bare = !args.model.contains('/') && !config.file.routes.contains_key(&args.model);
    if bare || offers_tools {
        let _ = built.router.catalog().await;
    }
    let mut request = ChatRequest::new(args.model.clone(), vec![Message::user("")]);
    request.meta.caller = args.caller.clone();
    request.meta.task = args.task.clone();
    // Like the gateway: the key's privacy, raised (never lowered) by `--privacy` (the
    // `x-switchyard-privacy` header).
    request.meta.privacy = PrivacyClass::strictest(key.and_then(|k| k.privacy), args.privacy);
    let mut names: Vec<&str> = args.tool.iter().map(String::as_str).collect();
    if names.is_empty() && args.tools {
        names.push("tool");
    }
    for name in names {
        request.tools.push(ToolSpec {
            name: name.to_owned(),
            description: None,
            parameters: serde_json::json!({"type": "object", "properties": {}}),
        });
    }
    let mut explanation = built.router.explain(&request);
    if let Some(key) = key.filter(|k| !k.allows_model(&args.model)) {
        // The gateway refuses the request before routing it.
        explanation.error = Some(format!(
            "policy_blocked: API key `{}` may not use model `{}` (allowed: {})",
            key.id,
            args.model,
            key.allowed_routes.as_deref().unwrap_or_default().join(", ")
        ));
        explanation.targets.clear();
    }
    if args.json {
        match serde_json::to_string_pretty(&explanation) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                errln!("switchyard: {e}");
                return 1;
            }
        }
    } else {
        out!("{}", render(&explanation));
    }
    let servable = explanation.error.is_none() && explanation.targets.iter().any(|t| t.included);
    if servable { 0 } else { 1 }
}

/// The key whose id is `id`; the error lists the known ids.
fn caller_key<'a>(keys: &'a [ApiKey], id: &str) -> Result<&'a ApiKey, String> {
    keys.iter().find(|k| k.id == id).ok_or_else(|| {
        let known: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        if known.is_empty() {
            format!("--caller `{id}`: the config has no keys (server.keys), so no caller ids")
        } else {
            format!(
                "--caller `{id}`: no key in server.keys has this id (known: {})",
                known.join(", ")
            )
        }
    })
}

/// Renders an explanation for people.
pub(crate) fn render(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "request:  {}", e.requested);
    let _ = writeln!(
        out,
        "route:    {}",
        e.route
            .as_deref()
            .unwrap_or("(none: exact target or bare model)")
    );
    if let Some(rule) = &e.rule {
        let _ = writeln!(out, "rule:     {rule}");
    }
    let _ = writeln!(out, "privacy:  {}", e.privacy.as_str());
    let _ = writeln!(
        out,
        "fallback: {}",
        if e.fallback { "allowed" } else { "off" }
    );
    if let Some(err) = &e.error {
        let _ = writeln!(out, "error:    {err}");
    }
    let mut n = 0;
    for t in e.targets.iter().filter(|t| t.included) {
        n += 1;
        let _ = writeln!(
            out,
            "  {n}. {:<40} {:<6} {}",
            t.target.to_string(),
            t.target.locality.as_str(),
            t.reason
        );
    }
    for t in e.targets.iter().filter(|t| !t.included) {
        let _ = writeln!(
            out,
            "  -  {:<40} {:<6} excluded: {}",
            t.target.to_string(),
            t.target.locality.as_str(),
            t.reason
        );
    }
    if n == 0 {
        out.push_str("  no target would serve this request\n");
    }
    out
}
