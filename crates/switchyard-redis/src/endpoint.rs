//! Parsing the `shared_state.url` forms into what the client connects to.

use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

/// Why a shared-state URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// The scheme is not one of the supported ones.
    #[error(
        "unsupported scheme in `{0}`: use redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"
    )]
    Scheme(String),
    /// The URL is malformed (host, port, database or service missing or wrong).
    #[error("invalid shared-state URL: {0}")]
    Invalid(String),
    /// The CA file cannot be read, holds no certificate, or is given for a non-TLS URL.
    #[error("shared-state CA file: {0}")]
    CaFile(String),
}

impl RedisConfigError {
    /// A stable snake_case code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Scheme(_) => "unsupported_url_scheme",
            Self::Invalid(_) => "invalid_url",
            Self::CaFile(_) => "invalid_ca_file",
        }
    }
}

/// Where the shared state lives.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// One server (`redis://`, `rediss://`).
    Single(ConnectionInfo),
    /// The master of `service`, found through these Sentinels.
    Sentinel {
        /// The Sentinels.
        nodes: Vec<ConnectionInfo>,
        /// The monitored service (master) name.
        service: String,
        /// Database, user and password for the master.
        redis: RedisConnectionInfo,
        /// TLS to the master.
        tls: bool,
    },
    /// A Redis Cluster, through any of these seed nodes.
    Cluster(Vec<ConnectionInfo>),
}

impl Endpoint {
    /// Parses `url`; `password` (when given) replaces the URL's.
    pub fn parse(url: &str, password: Option<&str>) -> Result<Self, RedisConfigError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| RedisConfigError::Invalid(format!("`{url}` has no scheme")))?;
        let (base, kind) = match scheme {
            "redis" | "rediss" => (scheme, ""),
            "redis+sentinel" | "rediss+sentinel" => (&scheme[..scheme.len() - 9], "sentinel"),
            "redis+cluster" | "rediss+cluster" => (&scheme[..scheme.len() - 8], "cluster"),
            _ => return Err(RedisConfigError::Scheme(url.to_owned())),
        };
        let (auth, hosts_path) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (hosts, path) = hosts_path.split_once('/').unwrap_or((hosts_path, ""));
        if hosts.is_empty() {
            return Err(RedisConfigError::Invalid(format!("`{url}` names no host")));
        }
        let auth_part = auth.map(|a| format!("{a}@")).unwrap_or_default();
        let node = |host: &str, db: &str| -> Result<ConnectionInfo, RedisConfigError> {
            let one = format!("{base}://{auth_part}{host}/{db}");
            let mut info: ConnectionInfo = one
                .parse()
                .map_err(|e| RedisConfigError::Invalid(format!("`{host}`: {e}")))?;
            if let Some(p) = password {
                info.redis.password = Some(p.to_owned());
            }
            Ok(info)
        };
        match kind {
            "" => Ok(Self::Single(node(hosts, path)?)),
            "cluster" => {
                if !path.is_empty() {
                    return Err(RedisConfigError::Invalid(
                        "a Cluster has no database number: drop the path".to_owned(),
                    ));
                }
                let nodes = hosts
                    .split(',')
                    .map(|h| node(h, "0"))
                    .collect::<Result<_, _>>()?;
                Ok(Self::Cluster(nodes))
            }
            _ => {
                let (service, db) = path.split_once('/').unwrap_or((path, "0"));
                if service.is_empty() {
                    return Err(RedisConfigError::Invalid(
                        "a Sentinel URL needs the service name: redis+sentinel://host:port/SERVICE[/DB]"
                            .to_owned(),
                    ));
                }
                let master = node(hosts.split(',').next().unwrap_or(hosts), db)?;
                // Sentinels themselves: same scheme, no database, no credentials.
                let nodes = hosts
                    .split(',')
                    .map(|h| {
                        format!("{base}://{h}/0")
                            .parse::<ConnectionInfo>()
                            .map_err(|e| RedisConfigError::Invalid(format!("`{h}`: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Self::Sentinel {
                    nodes,
                    service: service.to_owned(),
                    redis: master.redis,
                    tls: matches!(master.addr, ConnectionAddr::TcpTls { .. }),
                })
            }
        }
    }

    /// Whether the servers are reached over TLS (`rediss`, `rediss+sentinel`,
    /// `rediss+cluster`).
    pub fn is_tls(&self) -> bool {
        let tls = |i: &ConnectionInfo| matches!(i.addr, ConnectionAddr::TcpTls { .. });
        match self {
            Self::Single(i) => tls(i),
            Self::Sentinel { tls, .. } => *tls,
            Self::Cluster(nodes) => nodes.iter().any(tls),
        }
    }

    /// The URL without credentials, for logs.
    pub fn describe(&self) -> String {
        let addr = |i: &ConnectionInfo| i.addr.to_string();
        match self {
            Self::Single(i) => format!("redis {} db {}", addr(i), i.redis.db),
            Self::Sentinel { nodes, service, .. } => format!(
                "redis sentinel {} service {service}",
                nodes.iter().map(addr).collect::<Vec<_>>().join(",")
            ),
            Self::Cluster(nodes) => format!(
                "redis cluster {}",
                nodes.iter().map(addr).collect::<Vec<_>>().join(",")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_forms() {
        let single = Endpoint::parse("redis://u:pw@127.0.0.1:6380/2", None).unwrap();
        let Endpoint::Single(info) = single else {
            panic!("{single:?}")
        };
        assert_eq!(info.redis.db, 2);
        assert_eq!(info.redis.password.as_deref(), Some("pw"));
        let tls = Endpoint::parse("rediss://redis.example:6379/0", Some("secret")).unwrap();
        let Endpoint::Single(info) = tls else {
            panic!("{tls:?}")
        };
        assert!(matches!(info.addr, ConnectionAddr::TcpTls { .. }));
        assert_eq!(info.redis.password.as_deref(), Some("secret"));
        let sentinel = Endpoint::parse(
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/main/1",
            None,
        )
        .unwrap();
        let Endpoint::Sentinel {
            nodes,
            service,
            redis,
            ..
        } = sentinel
        else {
            panic!("{sentinel:?}")
        };
        assert_eq!((nodes.len(), service.as_str(), redis.db), (2, "main", 1));
        let cluster = Endpoint::parse("redis+cluster://a:7000,b:7001", None).unwrap();
        assert!(matches!(cluster, Endpoint::Cluster(ref n) if n.len() == 2));
    }

    #[test]
    fn mistakes_are_named() {
        for (url, code) in [
            ("http://127.0.0.1:6379", "unsupported_url_scheme"),
            ("127.0.0.1:6379", "invalid_url"),
            ("redis://", "invalid_url"),
            ("redis+sentinel://10.0.0.1:26379", "invalid_url"),
            ("redis+cluster://a:7000/1", "invalid_url"),
            ("redis://127.0.0.1:6379/notanumber", "invalid_url"),
        ] {
            let e = Endpoint::parse(url, None).unwrap_err();
            assert_eq!(e.reason_code(), code, "{url}: {e}");
        }
    }
}
