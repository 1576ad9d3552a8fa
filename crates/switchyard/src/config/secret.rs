//! Resolves `"env:NAME"` references when a config is loaded. A reference to a variable
//! that is not set (or is empty) is an error naming the key that holds it; a literal
//! secret in the file is accepted with a warning.

use super::error::{ConfigError, ConfigErrorKind};
use super::file::{FileConfig, Secret};
use super::locate::Segment;

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

/// Resolves every secret in `file` through `env`.
pub(crate) fn resolve(
    file: &mut FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (i, k) in file.server.keys.iter_mut().enumerate() {
        let path = vec![key("server"), key("keys"), Segment::Index(i), key("token")];
        resolve_one(&mut k.token, path, env)?;
    }
    for (id, p) in &mut file.providers {
        if let Some(api_key) = &mut p.api_key {
            let path = vec![key("providers"), key(id), key("api_key")];
            resolve_one(api_key, path, env)?;
        }
        for (name, value) in &mut p.headers {
            let path = vec![key("providers"), key(id), key("headers"), key(name)];
            resolve_one(value, path, env)?;
        }
    }
    if let Some(shared) = &mut file.shared_state {
        // A URL is a secret only when it is a reference or carries credentials.
        if shared.url.env_name().is_some() || shared.url.raw().contains('@') {
            let path = vec![key("shared_state"), key("url")];
            resolve_one(&mut shared.url, path, env)?;
        }
        if let Some(password) = &mut shared.password {
            let path = vec![key("shared_state"), key("password")];
            resolve_one(password, path, env)?;
        }
    }
    Ok(())
}

fn resolve_one(
    secret: &mut Secret,
    path: Vec<Segment>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let Some(name) = secret.env_name() else {
        if !secret.raw().is_empty() {
            tracing::warn!(
                key = %super::locate::render_path(&path),
                "a secret is written into the config file; prefer \"env:NAME\""
            );
        }
        return Ok(());
    };
    if name.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidValue,
            "`env:` needs a variable name (`env:NAME`)",
        )
        .at(path));
    }
    match env(name) {
        Some(value) if !value.trim().is_empty() => {
            secret.set_value(value.trim().to_owned());
            Ok(())
        }
        Some(_) => Err(ConfigError::new(
            ConfigErrorKind::MissingEnv,
            format!("the environment variable `{name}` is empty"),
        )
        .at(path)),
        None => Err(ConfigError::new(
            ConfigErrorKind::MissingEnv,
            format!("the environment variable `{name}` is not set"),
        )
        .at(path)),
    }
}
