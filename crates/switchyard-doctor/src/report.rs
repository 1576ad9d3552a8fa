//! The doctor's findings: one [`Check`] per rung, grouped in sections, with an exit code.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::Locality;

use crate::input::ProbeApi;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but something will bite (a timeout too short, calls written as text...).
    Warn,
    /// Broken: requests will fail until it is fixed.
    Fail,
}

impl Status {
    /// The table's mark: `✓`, `!` or `✗`.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// What a check looks at: the gateway's own checks, then the provider ladder's rungs 1 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    /// The config file passes `config check` (parses, validates, builds).
    Config,
    /// The config file's checksum.
    Checksum,
    /// The binary's version and build id.
    Version,
    /// The listen address: free to bind, or already served.
    Listen,
    /// Caller keys when listening beyond loopback.
    Keys,
    /// Proxy variables in the environment (the gateway ignores them).
    Proxy,
    /// 1: the host name resolves.
    Dns,
    /// 2: a TCP connection opens.
    Tcp,
    /// 3: TLS (or plain HTTP) is what the port speaks.
    Tls,
    /// 4: the API answers at the base URL.
    Http,
    /// 5: the configured models are there, with the capabilities they are used for.
    Catalog,
    /// 6: every API path reaches the server (no proxy that forwards only some).
    Paths,
    /// 7: a tiny non-streamed generation.
    Generate,
    /// 8: a tiny streamed generation, timed.
    Stream,
    /// 9: a tool round trip.
    Tools,
    /// 10: the API key and the account's quota.
    Account,
}

impl Rung {
    /// The rung's name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Rung::Config => "config",
            Rung::Checksum => "checksum",
            Rung::Version => "version",
            Rung::Listen => "listen",
            Rung::Keys => "keys",
            Rung::Proxy => "proxy",
            Rung::Dns => "dns",
            Rung::Tcp => "tcp",
            Rung::Tls => "tls",
            Rung::Http => "http",
            Rung::Catalog => "catalog",
            Rung::Paths => "paths",
            Rung::Generate => "generate",
            Rung::Stream => "stream",
            Rung::Tools => "tools",
            Rung::Account => "account",
        }
    }

    /// The rung's number on the provider ladder (1 to 10); `None` for gateway checks.
    pub fn number(self) -> Option<u8> {
        Some(match self {
            Rung::Config
            | Rung::Checksum
            | Rung::Version
            | Rung::Listen
            | Rung::Keys
            | Rung::Proxy => {
                return None;
            }
            Rung::Dns => 1,
            Rung::Tcp => 2,
            Rung::Tls => 3,
            Rung::Http => 4,
            Rung::Catalog => 5,
            Rung::Paths => 6,
            Rung::Generate => 7,
            Rung::Stream => 8,
            Rung::Tools => 9,
            Rung::Account => 10,
        })
    }
}

/// The result of one check: one line of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub rung: Rung,
    /// How it came out.
    pub status: Status,
    /// A stable snake_case code: `ok`, or what is wrong (`connect_refused`, `model_missing`...).
    pub code: String,
    /// What the check was about when a rung has several lines (a model name, a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What was found, in one sentence.
    pub summary: String,
    /// How to fix it (warnings and failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// How long the probe took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// Measured numbers (`ttft_ms`, `max_gap_ms`, `load_ms`, `context_window`...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: BTreeMap<String, u64>,
}

/// What stands in for a secret in the report.
pub(crate) const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are placeholders (`ollama`, `EMPTY`, `none`) that local servers
/// accept for any key; masking them would mangle the report's own words.
const MIN_SECRET_LEN: usize = 8;

/// `text` with every occurrence of `secret` replaced by [`REDACTED`].
pub(crate) fn redact_secret(text: &str, secret: Option<&str>) -> String {
    match secret.map(str::trim) {
        Some(secret) if secret.len() >= MIN_SECRET_LEN && text.contains(secret) => {
            text.replace(secret, REDACTED)
        }
        _ => text.to_owned(),
    }
}

impl Check {
    /// The check with every occurrence of `secret` (the API key the doctor sent) masked in
    /// its texts: upstreams echo the key in their error messages, and the report is meant
    /// for attaching to a ticket.
    pub(crate) fn redacted(mut self, secret: Option<&str>) -> Self {
        self.summary = redact_secret(&self.summary, secret);
        self.hint = self.hint.map(|h| redact_secret(&h, secret));
        self.subject = self.subject.map(|s| redact_secret(&s, secret));
        self
    }

    /// A passing check.
    pub fn ok(rung: Rung, summary: impl Into<String>) -> Self {
        Self {
            rung,
            status: Status::Ok,
            code: "ok".to_owned(),
            subject: None,
            summary: summary.into(),
            hint: None,
            elapsed_ms: None,
            measurements: BTreeMap::new(),
        }
    }

    /// A warning or failure with its code and fix hint.
    pub fn problem(
        rung: Rung,
        status: Status,
        code: impl Into<String>,
        summary: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            rung,
            status,
            code: code.into(),
            subject: None,
            summary: summary.into(),
            hint: Some(hint.into()),
            elapsed_ms: None,
            measurements: BTreeMap::new(),
        }
    }

    /// Sets the subject (a model, a path).
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the elapsed time.
    #[must_use]
    pub fn elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed_ms = Some(millis(elapsed));
        self
    }

    /// Adds a measurement.
    #[must_use]
    pub fn measure(mut self, name: &str, value: u64) -> Self {
        self.measurements.insert(name.to_owned(), value);
        self
    }
}

/// Whole milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The gateway's own checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewaySection {
    /// The binary's version.
    pub version: String,
    /// The binary's build id.
    pub build_id: String,
    /// The config file, if one was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    /// The config file's checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_checksum: Option<String>,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// One provider's ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSection {
    /// The provider's id.
    pub id: String,
    /// The API it speaks.
    pub api: ProbeApi,
    /// The base URL as configured.
    pub base_url: String,
    /// Where it runs.
    pub locality: Locality,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// The rung whose failure stopped the ladder, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Rung>,
}

impl ProviderSection {
    /// The worst status among the checks (`Ok` when there are none).
    pub fn status(&self) -> Status {
        worst(&self.checks)
    }
}

fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The gateway's own checks.
    pub gateway: GatewaySection,
    /// One ladder per provider, in the order given.
    pub providers: Vec<ProviderSection>,
}

/// Counts over a whole report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Checks that failed.
    pub failures: usize,
    /// Checks that warned.
    pub warnings: usize,
    /// The process exit code: 0 all good, 1 warnings, 2 failures.
    pub exit_code: i32,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    gateway: &'a GatewaySection,
    providers: &'a [ProviderSection],
    summary: Summary,
}

impl Report {
    fn all_checks(&self) -> impl Iterator<Item = &Check> {
        self.gateway
            .checks
            .iter()
            .chain(self.providers.iter().flat_map(|p| p.checks.iter()))
    }

    /// Counts of failures and warnings, and the exit code.
    pub fn summary(&self) -> Summary {
        let failures = self
            .all_checks()
            .filter(|c| c.status == Status::Fail)
            .count();
        let warnings = self
            .all_checks()
            .filter(|c| c.status == Status::Warn)
            .count();
        let exit_code = if failures > 0 {
            2
        } else if warnings > 0 {
            1
        } else {
            0
        };
        Summary {
            failures,
            warnings,
            exit_code,
        }
    }

    /// The process exit code: 0 all good, 1 warnings, 2 failures.
    pub fn exit_code(&self) -> i32 {
        self.summary().exit_code
    }

    /// The provider section with this id.
    pub fn provider(&self, id: &str) -> Option<&ProviderSection> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The same content as the table, as pretty-printed JSON (with a `summary` object), for
    /// attaching to a ticket.
    pub fn to_json(&self) -> String {
        let json = ReportJson {
            gateway: &self.gateway,
            providers: &self.providers,
            summary: self.summary(),
        };
        match serde_json::to_string_pretty(&json) {
            Ok(text) => text,
            // Serialising plain structs of strings and numbers cannot fail; keep a valid
            // JSON answer anyway.
            Err(e) => format!("{{\"error\":{:?}}}", e.to_string()),
        }
    }

    /// The readable table: one line per check with `✓`, `!` or `✗`, a fix hint under every
    /// warning and failure, and a summary line.
    pub fn to_table(&self) -> String {
        crate::table::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_masked_everywhere_and_placeholders_are_left() {
        let key = "sk-abcdef0123456789";
        let text = format!("Incorrect API key provided: {key}; again {key}");
        let masked = redact_secret(&text, Some(key));
        assert!(!masked.contains(key), "{masked}");
        assert_eq!(masked.matches(REDACTED).count(), 2);
        assert_eq!(
            redact_secret("ollama pull m", Some("ollama")),
            "ollama pull m"
        );
        assert_eq!(redact_secret("text", None), "text");
        let check = Check::ok(Rung::Account, format!("refused {key}")).redacted(Some(key));
        assert!(!check.summary.contains(key));
    }
}
