//! `switchyard route explain`: how a request would be routed and why, without sending it.

use std::fmt::Write as _;
use std::path::PathBuf;

use switchyard_core::{ChatRequest, Message, PrivacyClass, ToolSpec};
use switchyard_router::Explanation;

use crate::cli::{ExplainArgs, PrivacyArg};
use crate::serve::{EXIT_CONFIG, load_config};
use crate::wiring;

/// Prints the plan; exit code 0 when something would serve the request, 1 when not.
pub(crate) async fn run(config_path: Option<PathBuf>, args: &ExplainArgs) -> u8 {
    let config = match load_config(config_path.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return EXIT_CONFIG;
        }
    };
    let built = match wiring::new_router(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return EXIT_CONFIG;
        }
    };
    // Bare model names are found in the discovered catalogs: fill them first.
    if !args.model.contains('/') && !config.file.routes.contains_key(&args.model) {
        let _ = built.router.catalog().await;
    }
    let mut request = ChatRequest::new(args.model.clone(), vec![Message::user("")]);
    request.meta.caller = args.caller.clone();
    request.meta.privacy = args.privacy.map(|p| match p {
        PrivacyArg::Any => PrivacyClass::Any,
        PrivacyArg::LocalOnly => PrivacyClass::LocalOnly,
    });
    if args.tools {
        request.tools.push(ToolSpec {
            name: "tool".to_owned(),
            description: None,
            parameters: serde_json::json!({"type": "object", "properties": {}}),
        });
    }
    let explanation = built.router.explain(&request);
    if args.json {
        match serde_json::to_string_pretty(&explanation) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("switchyard: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", render(&explanation));
    }
    let servable = explanation.error.is_none() && explanation.targets.iter().any(|t| t.included);
    if servable { 0 } else { 1 }
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
