//! Installs the tracing subscriber: human lines or JSON on stderr, level from
//! `SWITCHYARD_LOG` (or `RUST_LOG`).
//!
//! The human format escapes control characters in every field (and the
//! message): model names, request ids, header values and upstream error
//! texts come from callers and upstreams, and a raw `\r\n` in one of them
//! would forge a log line. JSON lines already escape them.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::Field;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use crate::cli::LogFormat;

/// Installs the global subscriber. `default_level` applies when no variable sets one.
pub(crate) fn init(format: LogFormat, default_level: &str) {
    let filter = std::env::var("SWITCHYARD_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    // Colours only on a terminal, and never when NO_COLOR is set.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr closed) is dropped: the fallback
        // would be an `eprintln!` to that same stderr, which panics.
        .log_internal_errors(false);
    // A second install (tests) fails harmlessly.
    let _ = match format {
        LogFormat::Human => builder
            .with_target(false)
            .fmt_fields(human_fields())
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}

/// The human format's field formatter: `name=value` pairs (the message bare),
/// space-separated, each value with its control characters escaped.
fn human_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(write_escaped_field).delimited(" ")
}

/// Writes one field, escaping control characters in its rendered value.
fn write_escaped_field(w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let mut rendered = String::new();
    write!(rendered, "{value:?}")?;
    if field.name() != "message" {
        write!(w, "{}=", field.name())?;
    }
    write_escaped(w, &rendered)
}

/// Writes `s` with every control character (CR, LF, ESC, ...) as an escape.
fn write_escaped(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if c.is_control() => write!(w, "\\u{{{:x}}}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::human_fields;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn human_format_escapes_forged_lines_in_fields_and_messages() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(human_fields())
            .with_writer(move || out.clone())
            .finish();
        let forged = "m\r\nFORGED ERROR admin=1\x1b[2J";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(model = %forged, request_id = forged, "routed {forged}");
            tracing::warn!(error = ?forged, "upstream failed");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| !l.starts_with("FORGED")), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text}");
        assert!(text.contains("model=m\\r\\nFORGED"), "{text}");
        assert!(text.contains("routed m\\r\\nFORGED"), "{text}");
    }
}
