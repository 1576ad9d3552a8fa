//! Rendering a [`Report`] as a readable table.

use std::fmt::Write as _;

use crate::report::{Check, Report, Status};

/// Width at which hints are wrapped.
const WRAP: usize = 100;
/// Indent of the name column.
const NAME_WIDTH: usize = 9;

pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let g = &report.gateway;
    let _ = writeln!(
        out,
        "switchyard doctor · version {} · build {}",
        g.version, g.build_id
    );
    out.push('\n');
    out.push_str("gateway\n");
    for check in &g.checks {
        line(&mut out, check);
    }
    for p in &report.providers {
        out.push('\n');
        let _ = writeln!(
            out,
            "provider {} · {} · {} · {}",
            p.id,
            p.api.as_str(),
            p.locality.as_str(),
            p.base_url
        );
        for check in &p.checks {
            line(&mut out, check);
        }
        if let Some(stopped) = p.stopped_at {
            let at = stopped
                .number()
                .map(|n| format!("rung {n} "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  · stopped at {at}({}): fix it and run the doctor again to check the rest",
                stopped.name()
            );
        }
    }
    let s = report.summary();
    out.push('\n');
    let _ = writeln!(
        out,
        "result: {} {}, {} {} (exit {})",
        s.failures,
        plural(s.failures, "failure", "failures"),
        s.warnings,
        plural(s.warnings, "warning", "warnings"),
        s.exit_code
    );
    out
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn line(out: &mut String, check: &Check) {
    let number = check
        .rung
        .number()
        .map(|n| format!("{n:>2} "))
        .unwrap_or_default();
    let name = format!("{number}{}", check.rung.name());
    let mut text = String::new();
    if let Some(subject) = &check.subject {
        let _ = write!(text, "{subject}: ");
    }
    text.push_str(&check.summary);
    if let Some(ms) = check.elapsed_ms {
        let _ = write!(text, " ({ms} ms)");
    }
    let _ = writeln!(
        out,
        "  {} {name:<width$} {text}",
        check.status.mark(),
        width = NAME_WIDTH + 3
    );
    if let (Some(hint), true) = (&check.hint, check.status != Status::Ok) {
        let indent = " ".repeat(4 + NAME_WIDTH + 4);
        let label = if check.status == Status::Fail {
            "fix: "
        } else {
            "hint: "
        };
        wrap_into(out, &format!("{label}{hint}"), &indent);
    }
}

/// Appends `text` word-wrapped at [`WRAP`] columns, every line starting with `indent`.
fn wrap_into(out: &mut String, text: &str, indent: &str) {
    let room = WRAP.saturating_sub(indent.chars().count()).max(20);
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if !current.is_empty() && needed > room {
            let _ = writeln!(out, "{indent}{current}");
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        let _ = writeln!(out, "{indent}{current}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_the_indent() {
        let text = "word ".repeat(60);
        let mut out = String::new();
        wrap_into(&mut out, &text, "    ");
        assert!(out.lines().count() > 2);
        assert!(
            out.lines()
                .all(|l| l.starts_with("    ") && l.chars().count() <= WRAP)
        );
        assert_eq!(out.split_whitespace().count(), 60);
    }

    #[test]
    fn a_long_word_gets_a_line_of_its_own() {
        let long = "x".repeat(150);
        let mut out = String::new();
        wrap_into(&mut out, &format!("a {long} b"), "  ");
        assert_eq!(out.lines().count(), 3);
    }
}
