//! The parts of a base URL the network rungs need.

use std::net::IpAddr;

use switchyard_http::{BaseUrl, normalize_base_url};
use url::{Host, Url};

use crate::finding::Finding;

/// A provider's base URL, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The normalised base URL (no trailing slash).
    pub(crate) base: BaseUrl,
    /// Whether the scheme is `https`.
    pub(crate) https: bool,
    /// The host as written (brackets removed from IPv6 literals).
    pub(crate) host: String,
    /// The host, when it is an IP address literal.
    pub(crate) ip: Option<IpAddr>,
    /// The port (explicit or the scheme's default).
    pub(crate) port: u16,
}

impl Target {
    /// Parses a base URL; a finding when it cannot be used.
    pub(crate) fn parse(base_url: &str) -> Result<Target, Finding> {
        let invalid = |reason: String| Finding::InvalidBaseUrl { reason };
        let base = normalize_base_url(base_url).map_err(|e| invalid(e.reason))?;
        let url = Url::parse(base.as_str()).map_err(|e| invalid(e.to_string()))?;
        let (host, ip) = match url.host() {
            Some(Host::Domain(d)) => (d.to_owned(), None),
            Some(Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
            Some(Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
            None => return Err(invalid("there is no host".to_owned())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("there is no port".to_owned()))?;
        Ok(Target {
            https: url.scheme() == "https",
            base,
            host,
            ip,
            port,
        })
    }

    /// `host:port` for messages and the `Host` header.
    pub(crate) fn authority(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_schemes() {
        let t = Target::parse("http://127.0.0.1:11434/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.https),
            ("127.0.0.1", 11434, false)
        );
        assert!(t.ip.is_some());
        let t = Target::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.https),
            ("api.openai.com", 443, true)
        );
        assert_eq!(t.base.as_str(), "https://api.openai.com/v1");
        let t = Target::parse("http://[::1]:8080").unwrap();
        assert_eq!(t.authority(), "[::1]:8080");
    }

    #[test]
    fn refuses_what_cannot_be_probed() {
        for bad in ["", "127.0.0.1:11434", "ftp://h", "http://h/?q=1"] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_base_url", "{bad}");
        }
    }
}
