//! Why a config file was refused, and where in it the mistake is.

use std::fmt;
use std::path::PathBuf;

use super::locate::{Segment, render_path};

/// What kind of mistake a config has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ConfigErrorKind {
    /// The file could not be read.
    Read,
    /// The file is larger than a config file can reasonably be.
    TooLarge,
    /// Not valid JSON5.
    Syntax,
    /// A key the config does not know.
    UnknownKey,
    /// A value of the wrong type, or a required key missing.
    InvalidValue,
    /// An `env:NAME` reference to a variable that is not set.
    MissingEnv,
    /// The values parse but do not make sense together (validation).
    Invalid,
    /// A provider client could not be built from its section (CA file, header...).
    Provider,
    /// The router refused the routing sections.
    Router,
}

impl ConfigErrorKind {
    /// A stable snake_case code.
    pub(crate) fn reason_code(self) -> &'static str {
        match self {
            ConfigErrorKind::Read => "config_unreadable",
            ConfigErrorKind::TooLarge => "config_too_large",
            ConfigErrorKind::Syntax => "config_syntax",
            ConfigErrorKind::UnknownKey => "config_unknown_key",
            ConfigErrorKind::InvalidValue => "config_invalid_value",
            ConfigErrorKind::MissingEnv => "config_missing_env",
            ConfigErrorKind::Invalid => "config_invalid",
            ConfigErrorKind::Provider => "config_provider",
            ConfigErrorKind::Router => "config_router",
        }
    }
}

/// A refused config: what is wrong, at which key path and line of which file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The kind of mistake.
    pub(crate) kind: ConfigErrorKind,
    /// What is wrong, for a human.
    pub(crate) message: String,
    /// The key path (`providers.local.timeouts.connect_ms`), when known.
    pub(crate) path: Option<String>,
    /// The key path as segments, used to find the line.
    pub(crate) segments: Vec<Segment>,
    /// The 1-based line in the file, when known.
    pub(crate) line: Option<usize>,
    /// The file, when the config came from one.
    pub(crate) file: Option<PathBuf>,
}

impl ConfigError {
    /// An error without a location yet.
    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            path: None,
            segments: Vec::new(),
            line: None,
            file: None,
        }
    }

    /// Sets the key path.
    pub(crate) fn at(mut self, segments: Vec<Segment>) -> Self {
        let path = render_path(&segments);
        if !path.is_empty() {
            self.path = Some(path);
        }
        self.segments = segments;
        self
    }

    /// Sets the line.
    pub(crate) fn on_line(mut self, line: Option<usize>) -> Self {
        if line.is_some() {
            self.line = line;
        }
        self
    }

    /// Sets the file.
    pub(crate) fn in_file(mut self, file: Option<PathBuf>) -> Self {
        self.file = file;
        self
    }

    /// The stable reason code.
    pub(crate) fn reason_code(&self) -> &'static str {
        self.kind.reason_code()
    }
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE: PATH: MESSAGE` with whatever parts are known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{} ({})", self.message, self.reason_code())
    }
}

impl std::error::Error for ConfigError {}
