//! `switchyard models`: the catalog clients see (route aliases and every `provider/model`),
//! with capabilities, context windows and prices, as a table or JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use switchyard_core::Capabilities;
use switchyard_router::{CatalogEntry, CatalogKind};

use crate::cli::ModelsArgs;
use crate::wiring;

/// Prints the catalog, or runs a lifecycle subcommand (`pull`, `ps`).
pub(crate) async fn run(config_path: Option<PathBuf>, args: &ModelsArgs) -> u8 {
    if let Some(action) = &args.action {
        return crate::lifecycle::run(config_path, action).await;
    }
    let built = match wiring::load_router(config_path.as_ref()) {
        Ok((_config, built)) => built,
        Err(code) => return code,
    };
    let entries = built.router.catalog().await;
    if args.json {
        match serde_json::to_string_pretty(&entries) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                errln!("switchyard: {e}");
                return 1;
            }
        }
    } else {
        out!("{}", table(&entries));
    }
    for p in &built.providers {
        let id = &p.slot.id;
        let listed = entries
            .iter()
            .any(|e| e.kind == CatalogKind::Target && &e.provider == id);
        if !listed {
            errln!(
                "note: provider `{id}` lists no models (not reachable, or nothing pulled?); \
                 `switchyard doctor --provider {id}` says why"
            );
        }
    }
    0
}

fn caps(c: Option<&Capabilities>) -> String {
    let Some(c) = c else {
        return "?".to_owned();
    };
    let mut names = Vec::new();
    for (on, name) in [
        (c.completion, "chat"),
        (c.tools, "tools"),
        (c.thinking, "thinking"),
        (c.vision, "vision"),
        (c.embedding, "embedding"),
    ] {
        if on {
            names.push(name);
        }
    }
    if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(",")
    }
}

/// Renders the catalog as an aligned table.
pub(crate) fn table(entries: &[CatalogEntry]) -> String {
    let header = [
        "MODEL",
        "KIND",
        "PROVIDER",
        "LOCALITY",
        "CONTEXT",
        "CAPABILITIES",
        "USD/MTOK IN/OUT",
    ];
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                match e.kind {
                    CatalogKind::Route => "route".to_owned(),
                    CatalogKind::Target => "model".to_owned(),
                },
                e.provider.clone(),
                e.info.locality.as_str().to_owned(),
                e.info
                    .context_window
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                caps(e.info.capabilities.as_ref()),
                e.info.price.map_or_else(
                    || "-".to_owned(),
                    |p| format!("{}/{}", p.input_usd_per_mtok, p.output_usd_per_mtok),
                ),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    if rows.is_empty() {
        out.push_str("(no models)\n");
    }
    out
}
