//! Checks that a parsed config makes sense: ids, URLs (and no endpoint path in a base URL),
//! targets that name existing providers, positive timeouts and limits (the response store's
//! too), `warm` only on Ollama providers with a `keep_alive` Ollama can read, budgets. The
//! first mistake found is reported with its key path. That the server does not listen on
//! the network without keys is [`validate_listen`], checked apart: against the address
//! `serve` binds, which `--listen` may override.

use std::collections::BTreeSet;

/// The highest `requests_per_minute` a key may have: the rate limiter (in-process and the
/// shared-state script alike) spaces requests in whole milliseconds, so a larger figure
/// would silently mean this one.
pub(crate) const MAX_REQUESTS_PER_MINUTE: u32 = 60_000;

use switchyard_router::{BudgetConfig, TargetStep};

use super::error::{ConfigError, ConfigErrorKind};
use switchyard_core::KeepAlive;
// The paths an OpenAI-compatible client appends to its base URL (the doctor's list).
use switchyard_doctor::OPENAI_ENDPOINTS;

use super::file::{FileConfig, ModelSection, ProviderApi, ProviderSection, WarmSection};
use super::locate::Segment;

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

fn path<const N: usize>(parts: [Segment; N]) -> Vec<Segment> {
    parts.into()
}

fn invalid(segments: Vec<Segment>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Invalid, message).at(segments)
}

/// Checks the whole config.
pub(crate) fn validate(file: &FileConfig) -> Result<(), ConfigError> {
    validate_server(file)?;
    for (id, p) in &file.providers {
        validate_provider(id, p)?;
    }
    validate_routes(file)?;
    validate_callers(file)?;
    validate_policy(file)?;
    validate_shared_state(file)?;
    validate_concurrency_scopes(file)?;
    validate_responses(file)?;
    Ok(())
}

/// The response store's bounds: a zero would drop every stored response at once.
fn validate_responses(file: &FileConfig) -> Result<(), ConfigError> {
    let r = &file.responses;
    let limits = [
        ("ttl_secs", r.ttl_secs),
        ("max_entries", r.max_entries as u64),
        ("max_bytes", r.max_bytes as u64),
        ("max_entry_bytes", r.max_entry_bytes as u64),
    ];
    match limits.iter().find(|(_, value)| *value == 0) {
        Some((field, _)) => Err(invalid(
            path([key("responses"), key(field)]),
            "must be above zero (a zero bound would drop every stored response at once)",
        )),
        None => Ok(()),
    }
}

/// `concurrency_scope: "fleet"` counts in the shared state, so it needs one.
fn validate_concurrency_scopes(file: &FileConfig) -> Result<(), ConfigError> {
    if file.shared_state.is_some() {
        return Ok(());
    }
    let fleet = file
        .providers
        .iter()
        .find(|(_, p)| p.concurrency_scope == switchyard_router::ConcurrencyScope::Fleet);
    match fleet {
        Some((id, _)) => Err(invalid(
            path([key("providers"), key(id), key("concurrency_scope")]),
            "`fleet` needs `shared_state` (the replicas' in-flight counts are kept there); without it use `replica`",
        )),
        None => Ok(()),
    }
}

/// The shared-state URL, prefix and CA file (the client's own checks, so `config check`
/// and `serve` agree); nothing connects here.
fn validate_shared_state(file: &FileConfig) -> Result<(), ConfigError> {
    let Some(shared) = &file.shared_state else {
        return Ok(());
    };
    let cfg = shared.redis_config();
    let at = if cfg.key_prefix.is_empty() || cfg.key_prefix.contains(['{', '}']) {
        "key_prefix"
    } else {
        "url"
    };
    switchyard_redis::RedisState::new(cfg)
        .map(|_| ())
        .map_err(|e| {
            let at = match e {
                switchyard_redis::RedisConfigError::CaFile(_) => "ca_file",
                _ => at,
            };
            let message = hide_url_login(e.to_string(), shared.url.value());
            invalid(path([key("shared_state"), key(at)]), message)
        })
}

/// `message` with the login details of `url` (what stands before its last `@`: user and
/// password) masked wherever they appear, so a refusal quoting the URL never shows the
/// password; the scheme and host stay, to say what is wrong.
fn hide_url_login(message: String, url: &str) -> String {
    let Some((before_at, _)) = url.rsplit_once('@') else {
        return message;
    };
    // The login is what follows the scheme (`scheme://`, or a mangled `scheme:/`).
    let login = match before_at.split_once("://") {
        Some((_, login)) => login,
        None => before_at
            .split_once(':')
            .map_or(before_at, |(_, rest)| rest.trim_start_matches('/')),
    };
    let mut message = message;
    if !login.is_empty() {
        message = message.replace(login, "***");
    }
    // The password alone too, in case a message quotes it apart from the user.
    if let Some((_, password)) = login.split_once(':')
        && !password.is_empty()
    {
        message = message.replace(password, "***");
    }
    message
}

/// The listen policy for `listen`, the address `serve` binds (`server.listen`, or
/// `--listen` in its place): beyond loopback only with caller keys or `insecure_listen`.
/// The gateway's own rule, so `config check`, the doctor and `serve` agree; reported at
/// `server.listen`. Not part of [`validate`]: a file whose `server.listen` alone would be
/// refused is fine under `serve --listen 127.0.0.1:PORT`.
pub(crate) fn validate_listen(
    file: &FileConfig,
    listen: std::net::SocketAddr,
) -> Result<(), ConfigError> {
    let server = &file.server;
    switchyard_gateway::check_listen_policy(listen, !server.keys.is_empty(), server.insecure_listen)
        .map_err(|e| invalid(path([key("server"), key("listen")]), e.to_string()))
}

fn validate_server(file: &FileConfig) -> Result<(), ConfigError> {
    let server = &file.server;
    if server.max_body_bytes == 0 {
        return Err(invalid(
            path([key("server"), key("max_body_bytes")]),
            "must be above zero",
        ));
    }
    let counts = [
        ("header_read_timeout_ms", server.header_read_timeout_ms),
        ("idle_timeout_ms", server.idle_timeout_ms),
        ("body_read_timeout_ms", server.body_read_timeout_ms),
        ("max_connections", server.max_connections as u64),
        ("max_body_memory_bytes", server.max_body_memory_bytes as u64),
    ];
    if let Some((field, _)) = counts.iter().find(|(_, value)| *value == 0) {
        return Err(invalid(
            path([key("server"), key(field)]),
            "must be above zero",
        ));
    }
    let mut ids = BTreeSet::new();
    let mut tokens = BTreeSet::new();
    for (i, k) in server.keys.iter().enumerate() {
        let at = |field: &str| path([key("server"), key("keys"), Segment::Index(i), key(field)]);
        if k.id.trim().is_empty() {
            return Err(invalid(at("id"), "a key needs a non-empty id"));
        }
        if !ids.insert(k.id.as_str()) {
            return Err(invalid(
                at("id"),
                format!("the key id `{}` is used twice", k.id),
            ));
        }
        if k.token.value().is_empty() {
            return Err(invalid(at("token"), "a key needs a non-empty token"));
        }
        if !tokens.insert(k.token.value()) {
            return Err(invalid(
                at("token"),
                format!("key `{}` has the same token as another key", k.id),
            ));
        }
        if k.requests_per_minute == Some(0) {
            return Err(invalid(
                at("requests_per_minute"),
                "must be above zero (or absent)",
            ));
        }
        if k.requests_per_minute
            .is_some_and(|n| n > MAX_REQUESTS_PER_MINUTE)
        {
            return Err(invalid(
                at("requests_per_minute"),
                format!(
                    "must be at most {MAX_REQUESTS_PER_MINUTE} (one request a millisecond, \
                     the limiter's resolution); leave it out for no limit"
                ),
            ));
        }
        if k.tokens_per_minute == Some(0) {
            return Err(invalid(
                at("tokens_per_minute"),
                "must be above zero (or absent)",
            ));
        }
        if let Some(allowed) = &k.allowed_routes {
            for (j, name) in allowed.iter().enumerate() {
                check_allowed_route(file, name).map_err(|m| {
                    invalid(
                        path([
                            key("server"),
                            key("keys"),
                            Segment::Index(i),
                            key("allowed_routes"),
                            Segment::Index(j),
                        ]),
                        m,
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn check_allowed_route(file: &FileConfig, name: &str) -> Result<(), String> {
    if file.routes.contains_key(name) {
        return Ok(());
    }
    if let Some((provider, model)) = name.split_once('/') {
        if file.providers.contains_key(provider) && !model.is_empty() {
            return Ok(());
        }
    }
    Err(format!(
        "`{name}` is neither a route alias nor `provider/model` with a configured provider"
    ))
}

fn validate_provider(id: &str, p: &ProviderSection) -> Result<(), ConfigError> {
    let at = |field: &str| path([key("providers"), key(id), key(field)]);
    if id.is_empty() || id.contains('/') || id.chars().any(char::is_whitespace) {
        return Err(invalid(
            path([key("providers"), key(id)]),
            format!("provider id `{id}` must be non-empty, without `/` or spaces"),
        ));
    }
    let base = switchyard_http::normalize_base_url(&p.base_url)
        .map_err(|e| invalid(at("base_url"), format!("`{}`: {}", e.url, e.reason)))?;
    if let Some(found) = endpoint_path_in_base_url(p.api, base.as_str()) {
        return Err(invalid(
            at("base_url"),
            format!(
                "`{}` ends in the endpoint path `{}`, which the client appends itself \
                 (every request would go to a path that does not exist); write the API root: \
                 base_url: \"{}\"",
                base.as_str(),
                found.endpoint,
                found.root
            ),
        ));
    }
    if let Some(warm) = &p.warm {
        validate_warm(p.api, warm).map_err(|(field, message)| {
            let mut segments = at("warm");
            segments.extend(field.map(key));
            invalid(segments, message)
        })?;
    }
    if p.api == ProviderApi::Ollama {
        if p.max_tokens_field.is_some() {
            return Err(invalid(
                at("max_tokens_field"),
                "only for `api: \"openai\"` providers",
            ));
        }
        if matches!(
            p.text_tool_recovery,
            Some(super::file::TextRecoverySetting::Models(_))
        ) {
            return Err(invalid(
                at("text_tool_recovery"),
                "a model list is only for `api: \"openai\"` providers; use true or false",
            ));
        }
        if p.num_ctx.is_some() {
            return Err(invalid(
                at("num_ctx"),
                "only for `api: \"openai\"` providers (Ollama's /v1); the native API takes \
                 num_ctx per request",
            ));
        }
    }
    if p.api == ProviderApi::Anthropic {
        let openai_only = [
            ("max_tokens_field", p.max_tokens_field.is_some()),
            ("num_ctx", p.num_ctx.is_some()),
            ("text_tool_recovery", p.text_tool_recovery.is_some()),
            ("upstream_streaming", p.upstream_streaming.is_some()),
        ];
        if let Some((field, _)) = openai_only.iter().find(|(_, set)| *set) {
            return Err(invalid(at(field), "not for `api: \"anthropic\"` providers"));
        }
    } else if p.anthropic_version.is_some() || !p.anthropic_beta.is_empty() {
        let field = if p.anthropic_version.is_some() {
            "anthropic_version"
        } else {
            "anthropic_beta"
        };
        return Err(invalid(
            at(field),
            "only for `api: \"anthropic\"` providers",
        ));
    }
    if p.responses && p.api != ProviderApi::Openai {
        return Err(invalid(
            at("responses"),
            "only for `api: \"openai\"` providers (servers of `/v1/responses`)",
        ));
    }
    if p.num_ctx == Some(0) {
        return Err(invalid(at("num_ctx"), "must be above zero"));
    }
    if p.max_concurrency == Some(0) {
        return Err(invalid(at("max_concurrency"), "must be at least 1"));
    }
    if p.queue_timeout_ms == Some(0) {
        return Err(invalid(at("queue_timeout_ms"), "must be above zero"));
    }
    let t = &p.timeouts;
    for (name, value) in [
        ("connect_ms", t.connect_ms),
        ("first_token_ms", t.first_token_ms),
        ("idle_ms", t.idle_ms),
        ("total_ms", t.total_ms),
    ] {
        if value == Some(0) {
            return Err(invalid(
                path([key("providers"), key(id), key("timeouts"), key(name)]),
                "must be above zero",
            ));
        }
    }
    if p.ca_file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
        return Err(invalid(at("ca_file"), "must name a file"));
    }
    if p.discover == Some(false) && p.models.is_empty() {
        return Err(invalid(
            at("discover"),
            "with discovery off the provider needs a `models` list",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, m) in p.models.iter().enumerate() {
        validate_model(id, i, m, &mut seen)?;
    }
    Ok(())
}

/// `warm` is an Ollama feature (`/api/generate` with `keep_alive`), and its `keep_alive`
/// must be a value Ollama reads. The error names the field under `warm` (`None`: `warm`
/// itself).
fn validate_warm(
    api: ProviderApi,
    warm: &WarmSection,
) -> Result<(), (Option<&'static str>, String)> {
    if api != ProviderApi::Ollama {
        return Err((
            None,
            "only for `api: \"ollama\"` providers (models are loaded and kept loaded through \
             Ollama's native API)"
                .to_owned(),
        ));
    }
    let refused = match &warm.keep_alive {
        Some(KeepAlive::Seconds(s)) if !s.is_finite() => Some(s.to_string()),
        Some(KeepAlive::Duration(d)) if !is_ollama_duration(d) => Some(format!("{d:?}")),
        _ => None,
    };
    match refused {
        Some(value) => Err((
            Some("keep_alive"),
            format!(
                "{value} is not a duration Ollama reads: write a Go duration such as \"30m\" \
                 or \"1h30m\" (units ns, us, ms, s, m, h), or a number of seconds (-1: keep \
                 loaded for as long as Ollama runs, 0: unload at once)"
            ),
        )),
        None => Ok(()),
    }
}

/// Whether Ollama reads `text` as a `keep_alive`: a plain number of seconds (`"-1"`, `"0"`,
/// `"300"`, `"2.5"`) or a Go duration (Go's `time.ParseDuration`: an optional sign, then
/// one or more decimal numbers each with a unit of `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`,
/// `h`, such as `"5m"`, `"1h30m"`, `"-1h"`, `".5s"`, within about 292 years).
pub(crate) fn is_ollama_duration(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    is_decimal(unsigned) || is_go_duration(unsigned, text.starts_with('-'))
}

/// `digits`, `digits.`, `.digits` or `digits.digits` (at least one digit).
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    (!whole.is_empty() || !fraction.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// Go's `time.ParseDuration` after the sign: `"0"`, or a sequence of `number unit`.
fn is_go_duration(text: &str, negative: bool) -> bool {
    const UNITS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("\u{b5}s", 1_000),
        ("\u{3bc}s", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    if text == "0" {
        return true;
    }
    if text.is_empty() {
        return false;
    }
    // Go allows 1<<63 nanoseconds for a negative duration, one less for a positive one.
    let limit: u128 = if negative { 1 << 63 } else { (1 << 63) - 1 };
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        if !is_decimal(number) {
            return false;
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return false;
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let Some(whole) = parse_bounded(whole) else {
            return false;
        };
        // Go keeps the fraction's digits while they fit; 18 are far below a nanosecond.
        let digits = &fraction[..fraction.len().min(18)];
        let fraction_ns = match parse_bounded(digits) {
            Some(f) => f * scale / 10u128.pow(digits.len() as u32),
            None => return false,
        };
        total = match whole
            .checked_mul(scale)
            .and_then(|v| v.checked_add(fraction_ns))
            .and_then(|v| v.checked_add(total))
        {
            Some(t) if t <= limit => t,
            _ => return false,
        };
        rest = after;
    }
    true
}

/// Decimal digits as a number (empty: 0), `None` past 1<<63 (Go's overflow).
fn parse_bounded(digits: &str) -> Option<u128> {
    let mut value: u128 = 0;
    for b in digits.bytes() {
        value = value * 10 + u128::from(b - b'0');
        if value > 1 << 63 {
            return None;
        }
    }
    Some(value)
}

/// An endpoint path found at the end of a base URL, and the base URL to write instead.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EndpointInBaseUrl {
    /// The endpoint path found (`/chat/completions`, `/api`, `/api/chat`).
    pub(crate) endpoint: String,
    /// The base URL without it (for an OpenAI-compatible provider given Ollama's native
    /// path, Ollama's `/v1` root).
    pub(crate) root: String,
}

/// The paths of Ollama's native API, after `/api`.
const OLLAMA_ENDPOINTS: [&str; 13] = [
    "chat",
    "generate",
    "tags",
    "show",
    "ps",
    "pull",
    "push",
    "version",
    "embed",
    "embeddings",
    "create",
    "copy",
    "delete",
];

/// The paths the Anthropic client appends to its base URL (after removing a `/v1`).
const ANTHROPIC_ENDPOINTS: [&str; 3] = ["/v1/messages/count_tokens", "/v1/messages", "/v1/models"];

/// Whether the normalised `base_url` (no trailing `/`, no query) of a provider speaking
/// `api` ends in a path its client appends itself, so every request would go to
/// `.../v1/chat/completions/chat/completions` or `/api/api/chat`:
///
/// - OpenAI-compatible: `/chat/completions`, `/completions`, `/responses`, `/embeddings`,
///   `/models` (the root is what stands before: `http://h/v1/chat/completions` gives
///   `http://h/v1`); or one of Ollama's native paths (`http://h:11434/api/chat` gives
///   Ollama's OpenAI layer, `http://h:11434/v1`). A bare `/api` is left alone: some servers
///   (Open WebUI) serve the OpenAI API there.
/// - Ollama: `/api`, `/api/chat` and the other native paths, or `/v1` followed by an
///   OpenAI path (`/v1` alone is removed by the client); the root is the server's address.
/// - Anthropic: `/v1/messages`, `/v1/messages/count_tokens`, `/v1/models`.
///
/// Only the URL's path is looked at, so a host named `models` is not a path.
pub(crate) fn endpoint_path_in_base_url(
    api: ProviderApi,
    base_url: &str,
) -> Option<EndpointInBaseUrl> {
    let base = base_url.trim_end_matches('/');
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_len = base[authority_start..]
        .find('/')
        .map_or(0, |i| base.len() - authority_start - i);
    let path = &base[base.len() - path_len..];
    let found = |endpoint: &str, root_suffix: &str| {
        let root = &base[..base.len() - endpoint.len()];
        Some(EndpointInBaseUrl {
            endpoint: endpoint.to_owned(),
            root: format!("{root}{root_suffix}"),
        })
    };
    let ollama_native = || {
        let (before, last) = path.rsplit_once('/')?;
        if before.ends_with("/api") && OLLAMA_ENDPOINTS.contains(&last) {
            Some(&path[before.len() - "/api".len()..])
        } else {
            None
        }
    };
    match api {
        ProviderApi::Openai => {
            if let Some(endpoint) = OPENAI_ENDPOINTS.into_iter().find(|e| path.ends_with(e)) {
                return found(endpoint, "");
            }
            ollama_native().and_then(|endpoint| found(endpoint, "/v1"))
        }
        ProviderApi::Ollama => {
            if path.ends_with("/api") {
                return found("/api", "");
            }
            if let Some(endpoint) = ollama_native() {
                return found(endpoint, "");
            }
            let (before, _) = OPENAI_ENDPOINTS
                .into_iter()
                .find_map(|e| path.strip_suffix(e).map(|before| (before, e)))?;
            before
                .ends_with("/v1")
                .then(|| &path[before.len() - "/v1".len()..])
                .and_then(|endpoint| found(endpoint, ""))
        }
        ProviderApi::Anthropic => {
            if let Some(endpoint) = ANTHROPIC_ENDPOINTS.into_iter().find(|e| path.ends_with(e)) {
                return found(endpoint, "");
            }
            ollama_native().and_then(|endpoint| found(endpoint, ""))
        }
    }
}

fn validate_model<'a>(
    provider: &str,
    i: usize,
    m: &'a ModelSection,
    seen: &mut BTreeSet<&'a str>,
) -> Result<(), ConfigError> {
    let at = |field: &str| {
        path([
            key("providers"),
            key(provider),
            key("models"),
            Segment::Index(i),
            key(field),
        ])
    };
    if m.id.trim().is_empty() {
        return Err(invalid(at("id"), "a model needs a non-empty id"));
    }
    if !seen.insert(m.id.as_str()) {
        return Err(invalid(
            at("id"),
            format!("the model `{}` is listed twice", m.id),
        ));
    }
    for (name, price) in [
        ("input_usd_per_mtok", m.input_usd_per_mtok),
        ("output_usd_per_mtok", m.output_usd_per_mtok),
        ("cache_read_usd_per_mtok", m.cache_read_usd_per_mtok),
        ("cache_write_usd_per_mtok", m.cache_write_usd_per_mtok),
    ] {
        if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
            return Err(invalid(at(name), "must be a finite number >= 0"));
        }
    }
    if m.context_window == Some(0) {
        return Err(invalid(at("context_window"), "must be above zero"));
    }
    if m.max_output == Some(0) {
        return Err(invalid(at("max_output"), "must be above zero"));
    }
    Ok(())
}

fn validate_routes(file: &FileConfig) -> Result<(), ConfigError> {
    for (name, route) in &file.routes {
        let at = |rest: Vec<Segment>| {
            let mut p = vec![key("routes"), key(name)];
            p.extend(rest);
            p
        };
        if name.is_empty() || name.contains('/') {
            return Err(invalid(
                at(vec![]),
                format!("route alias `{name}` must be non-empty and contain no `/`"),
            ));
        }
        if file.providers.contains_key(name.as_str()) {
            tracing::debug!(route = %name, "a route alias has the same name as a provider");
        }
        if route.targets.is_empty() {
            return Err(invalid(
                at(vec![key("targets")]),
                "a route needs at least one target",
            ));
        }
        for (i, step) in route.targets.iter().enumerate() {
            let members = step.members();
            if members.is_empty() {
                return Err(invalid(
                    at(vec![key("targets"), Segment::Index(i), key("group")]),
                    "a group needs at least one member",
                ));
            }
            for (j, target) in members.iter().enumerate() {
                let target_path = match step {
                    TargetStep::One(_) => at(vec![key("targets"), Segment::Index(i)]),
                    TargetStep::Group { .. } => at(vec![
                        key("targets"),
                        Segment::Index(i),
                        key("group"),
                        Segment::Index(j),
                    ]),
                };
                check_target(file, target).map_err(|m| invalid(target_path, m))?;
            }
        }
        if route.overflow.is_some() && route.targets.len() < 2 {
            return Err(invalid(
                at(vec![key("overflow")]),
                "overflow needs a second target to overflow to",
            ));
        }
    }
    Ok(())
}

fn check_target(file: &FileConfig, target: &str) -> Result<(), String> {
    let Some((provider, model)) = target.split_once('/') else {
        return Err(format!("target `{target}` is not `provider/model`"));
    };
    if model.is_empty() {
        return Err(format!("target `{target}` names no model after `/`"));
    }
    if !file.providers.contains_key(provider) {
        let known: Vec<&str> = file.providers.keys().map(String::as_str).collect();
        return Err(format!(
            "target `{target}` names the provider `{provider}`, which is not configured \
             (providers: {})",
            known.join(", ")
        ));
    }
    Ok(())
}

fn validate_callers(file: &FileConfig) -> Result<(), ConfigError> {
    for (caller, policy) in &file.callers {
        if !file.server.keys.iter().any(|k| &k.id == caller) {
            return Err(invalid(
                path([key("callers"), key(caller)]),
                format!("no key in server.keys has the id `{caller}`"),
            ));
        }
        if let Some(allowed) = &policy.allowed_routes {
            for (j, name) in allowed.iter().enumerate() {
                check_allowed_route(file, name).map_err(|m| {
                    invalid(
                        path([
                            key("callers"),
                            key(caller),
                            key("allowed_routes"),
                            Segment::Index(j),
                        ]),
                        m,
                    )
                })?;
            }
        }
        if let Some(budget) = &policy.budget {
            check_budget(budget).map_err(|(f, m)| {
                invalid(
                    path([key("callers"), key(caller), key("budget"), key(f)]),
                    m,
                )
            })?;
        }
    }
    Ok(())
}

fn check_budget(b: &BudgetConfig) -> Result<(), (&'static str, &'static str)> {
    for (name, value) in [
        ("usd_per_day", b.usd_per_day),
        ("usd_per_month", b.usd_per_month),
    ] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err((name, "must be a finite number >= 0"));
        }
    }
    if !(b.soft_fraction > 0.0 && b.soft_fraction <= 1.0) {
        return Err(("soft_fraction", "must be above 0 and at most 1"));
    }
    Ok(())
}

fn validate_policy(file: &FileConfig) -> Result<(), ConfigError> {
    check_budget(&file.policy.budget)
        .map_err(|(f, m)| invalid(path([key("policy"), key("budget"), key(f)]), m))?;
    let health = &file.health;
    if health.cooldowns_ms.is_empty() || health.cooldowns_ms.contains(&0) {
        return Err(invalid(
            path([key("health"), key("cooldowns_ms")]),
            "must list at least one cooldown, each above zero",
        ));
    }
    if health.probe_interval_ms == Some(0) {
        return Err(invalid(
            path([key("health"), key("probe_interval_ms")]),
            "must be above zero (or absent for no probes)",
        ));
    }
    Ok(())
}
