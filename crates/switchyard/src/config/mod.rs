//! The config file: one JSON5 file, snake_case keys, secrets by reference (`"env:NAME"`),
//! unknown keys refused with their key path and line, values validated before anything is
//! built from them. [`build`] turns a valid config into the router, its providers and the
//! gateway's settings.

pub(crate) mod build;
mod error;
mod file;
mod locate;
mod secret;
mod strict;
mod validate;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub(crate) use error::{ConfigError, ConfigErrorKind};
#[cfg(test)]
pub(crate) use file::Secret;
pub(crate) use file::{
    DEFAULT_OLLAMA_URL, DEFAULT_PROVIDER_ID, FileConfig, ProviderApi, SharedStateSection,
};
pub(crate) use locate::Segment;

/// A config file may not be larger than this.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A loaded, resolved and validated config, and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The settings (secrets resolved).
    pub(crate) file: FileConfig,
    /// The file it was read from; `None` for the built-in defaults.
    pub(crate) path: Option<PathBuf>,
    /// `sha256:<hex>` of the file's bytes; `None` for the built-in defaults.
    pub(crate) checksum: Option<String>,
}

impl Config {
    /// The built-in config used when no file is given: Ollama on this host with
    /// discovery, listening on 127.0.0.1:4141.
    pub(crate) fn builtin() -> Config {
        let mut file = FileConfig::default();
        file.providers
            .insert(DEFAULT_PROVIDER_ID.to_owned(), default_ollama());
        Config {
            file,
            path: None,
            checksum: None,
        }
    }
}

/// The provider used when a config names none.
fn default_ollama() -> file::ProviderSection {
    file::ProviderSection {
        api: ProviderApi::Ollama,
        base_url: DEFAULT_OLLAMA_URL.to_owned(),
        locality: Some(switchyard_core::Locality::Local),
        discover: Some(true),
        max_concurrency: None,
        concurrency_scope: switchyard_router::ConcurrencyScope::Replica,
        max_queue: None,
        queue_timeout_ms: None,
        timeouts: file::TimeoutsSection::default(),
        api_key: None,
        headers: Default::default(),
        ca_file: None,
        models: Vec::new(),
        text_tool_recovery: None,
        max_tokens_field: None,
        num_ctx: None,
        responses: false,
        warm: None,
        upstream_streaming: None,
        anthropic_version: None,
        anthropic_beta: Vec::new(),
    }
}

/// How often `serve` probes providers when `health.probe_interval_ms` is not set, so that
/// `/readyz` and the routing plan know a provider is down before a request finds out.
pub(crate) const DEFAULT_PROBE_INTERVAL_MS: u64 = 10_000;

impl Config {
    /// Fills in what only a long-running server needs: active health probes.
    pub(crate) fn with_serve_defaults(mut self) -> Config {
        if self.file.health.probe_interval_ms.is_none() {
            self.file.health.probe_interval_ms = Some(DEFAULT_PROBE_INTERVAL_MS);
        }
        self
    }
}

/// Reads, parses, resolves and validates the file at `path`, with secrets from the process
/// environment.
pub(crate) fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let bytes = read_bounded(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::Syntax,
            format!("the file is not UTF-8: {e}"),
        )
        .in_file(Some(path.to_owned()))
    })?;
    let checksum = checksum(text.as_bytes());
    let file = parse_str(&text, &|name| std::env::var(name).ok())
        .map_err(|e| e.in_file(Some(path.to_owned())))?;
    Ok(Config {
        file,
        path: Some(path.to_owned()),
        checksum: Some(checksum),
    })
}

/// `sha256:<hex>` of a config file's bytes.
pub(crate) fn checksum(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let read_err = |e: std::io::Error| {
        ConfigError::new(ConfigErrorKind::Read, format!("cannot read the file: {e}"))
            .in_file(Some(path.to_owned()))
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::new(
            ConfigErrorKind::TooLarge,
            format!("the file is larger than {MAX_CONFIG_BYTES} bytes"),
        )
        .in_file(Some(path.to_owned())));
    }
    Ok(bytes)
}

/// Parses JSON5 text into a resolved, validated config. `env` looks up the variables that
/// `env:NAME` references name (the process environment outside tests).
pub(crate) fn parse_str(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<FileConfig, ConfigError> {
    let mut file = deserialize(text)?;
    if file.providers.is_empty() {
        tracing::info!(
            "the config names no providers: using Ollama at {DEFAULT_OLLAMA_URL} as `{DEFAULT_PROVIDER_ID}`"
        );
        file.providers
            .insert(DEFAULT_PROVIDER_ID.to_owned(), default_ollama());
    }
    secret::resolve(&mut file, env).map_err(|e| locate_error(e, text))?;
    validate::validate(&file).map_err(|e| locate_error(e, text))?;
    Ok(file)
}

/// The listen policy for the address `serve` binds (`listen`: `server.listen` or
/// `--listen`), checked after loading (see [`validate::validate_listen`]); the error is
/// located at `server.listen` in the file when there is one.
pub(crate) fn check_listen(
    config: &Config,
    listen: std::net::SocketAddr,
) -> Result<(), ConfigError> {
    validate::validate_listen(&config.file, listen).map_err(|e| match &config.path {
        Some(p) => locate_in_file(e, p),
        None => e,
    })
}

/// Adds the file and the line of the error's key path to an error found after loading
/// (building a provider or the router).
pub(crate) fn locate_in_file(error: ConfigError, path: &Path) -> ConfigError {
    let located = match read_bounded(path).map(|b| String::from_utf8_lossy(&b).into_owned()) {
        Ok(text) => locate_error(error, &text),
        Err(_) => error,
    };
    located.in_file(Some(path.to_owned()))
}

/// Adds the line of the error's key path.
fn locate_error(mut error: ConfigError, text: &str) -> ConfigError {
    if error.line.is_none() {
        error.line = locate::line_of(text, &error.segments);
    }
    error
}

/// Objects and arrays may not be nested deeper than this. Turning the parsed document into
/// the config recurses once per level (serde buffers untagged values recursively), so a
/// deeper file would overflow the stack; a real config is a handful of levels deep.
pub(crate) const MAX_NESTING: usize = 128;

fn deserialize(text: &str) -> Result<FileConfig, ConfigError> {
    if let Some(line) = too_deep(text) {
        return Err(ConfigError::new(
            ConfigErrorKind::Syntax,
            format!("objects and arrays are nested deeper than {MAX_NESTING} levels"),
        )
        .on_line(Some(line)));
    }
    let mut de = json5::Deserializer::from_str(text).map_err(|e| {
        let (message, line) = json5_message(&e);
        ConfigError::new(ConfigErrorKind::Syntax, message).on_line(line)
    })?;
    // Integer fields are read strictly (json5 alone clamps `-1` or `2.5` into them).
    serde_path_to_error::deserialize(strict::Strict(&mut de)).map_err(|e| {
        let segments = locate::from_serde_path(e.path());
        let (message, json5_line) = json5_message(e.inner());
        let kind = if message.starts_with("unknown field") {
            ConfigErrorKind::UnknownKey
        } else {
            ConfigErrorKind::InvalidValue
        };
        // A key written twice is found by its path at its first place; json5 knows the
        // second one, where the mistake is.
        let line = if message.contains(file::WRITTEN_TWICE) {
            json5_line.or_else(|| locate::line_of(text, &segments))
        } else {
            locate::line_of(text, &segments).or(json5_line)
        };
        ConfigError::new(kind, message).at(segments).on_line(line)
    })
}

/// The line where objects and arrays first nest deeper than [`MAX_NESTING`], if they do:
/// a byte scan counting `[` and `{` outside strings and comments (no recursion, so it
/// cannot overflow whatever the input).
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' | b'\'' => {
                // A string: skip to its closing quote (escapes skip the next byte).
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    if c == b'\n' {
                        line += 1;
                    }
                    if c == b'\\' {
                        if bytes.get(i + 1) == Some(&b'\n') {
                            line += 1;
                        }
                        i += 1;
                    } else if c == b {
                        break;
                    }
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while bytes.get(i + 1).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while let Some(&c) = bytes.get(i) {
                    if c == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        i += 1;
                        break;
                    }
                    if c == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The message of a json5 error without its location, and the location's line.
fn json5_message(e: &json5::Error) -> (String, Option<usize>) {
    match e {
        json5::Error::Message { msg, location } => {
            // Syntax errors carry pest's multi-line rendering; keep its last line (what
            // was expected) next to our own `file:line` prefix.
            let msg = if msg.contains('\n') {
                let expected = msg
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .trim()
                    .trim_start_matches("= ")
                    .to_owned();
                match location {
                    Some(loc) => format!("syntax error at column {}: {expected}", loc.column),
                    None => format!("syntax error: {expected}"),
                }
            } else {
                msg.clone()
            };
            (msg, location.as_ref().map(|l| l.line))
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod anthropic_tests;
