//! Which web pages may open a WebSocket: the `Origin` check against cross-site WebSocket
//! hijacking (CSWSH), without I/O.
//!
//! Browsers apply no CORS to WebSockets: any page a logged-in user visits can open one to
//! your server, with the user's cookies. What the browser does send is the page's `Origin`.
//! [`OriginPolicy`] decides from it and the request's `Host`:
//!
//! - **same origin** (on by default): `Origin`'s host and port equal `Host`'s (a `Host`
//!   without a port means the default port of the origin's scheme: 80 for `http`, 443 for
//!   `https`);
//! - **allow-list**: origins written out exactly (`https://app.example.com`, or with a
//!   port), compared case-insensitively after normalising default ports; no substring or
//!   prefix matching;
//! - **subdomain pattern**, only when written so: `https://*.example.com` matches
//!   `https://a.example.com` and `https://a.b.example.com`, never `https://example.com` nor
//!   `https://evilexample.com`, on the pattern's scheme and port only;
//! - **no `Origin`** (a non-browser client: curl, a server, a mobile app) is allowed by
//!   default ([`OriginPolicy::allow_missing`] turns that off). `Origin: null` (sandboxed
//!   frames, `file:` pages) is never same-origin and matches only an explicit `"null"`.
//!
//! ```
//! use armature_ws_core::origin::{OriginPolicy, OriginRefusal};
//!
//! let policy = OriginPolicy::default().allow("https://app.example.com").allow("https://*.example.org");
//! assert!(policy.check(Some("http://localhost:3000"), Some("localhost:3000")).is_ok());
//! assert!(policy.check(Some("https://app.example.com"), Some("api.example.com")).is_ok());
//! assert!(policy.check(Some("https://eu.example.org"), Some("api.example.com")).is_ok());
//! assert_eq!(
//!     policy.check(Some("https://evil.test"), Some("api.example.com")),
//!     Err(OriginRefusal::NotAllowed)
//! );
//! assert!(policy.check(None, Some("api.example.com")).is_ok());
//! ```

use std::fmt;

/// Why [`OriginPolicy::check`] refused a request (answered `403` before any upgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginRefusal {
    /// The `Origin` is neither the server's own nor allowed.
    NotAllowed,
    /// The request has no `Origin` and the policy requires one.
    Missing,
}

impl OriginRefusal {
    /// A short reason, for the `403` body and the logs.
    pub fn reason(self) -> &'static str {
        match self {
            OriginRefusal::NotAllowed => "origin not allowed",
            OriginRefusal::Missing => "origin header required",
        }
    }
}

impl fmt::Display for OriginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for OriginRefusal {}

/// `scheme://host:port`, lowercased, the port made explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (IPv6 in brackets); the port is `None` when absent.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = authority.get(..end + 2)?;
        match rest.get(end + 1..)? {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

impl Origin {
    fn parse(text: &str) -> Option<Origin> {
        let (scheme, authority) = text.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = default_port(&scheme)?;
        // An origin has no path; tolerate a single trailing slash in configuration.
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        let (host, port) = split_host_port(authority)?;
        Some(Origin {
            scheme,
            host,
            port: port.unwrap_or(default),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Exact(Origin),
    /// `scheme://*.suffix[:port]`: any strict subdomain of `suffix`.
    Subdomains(Origin),
    /// The literal `null` origin.
    Null,
    /// Anything (`"*"`): the check is off.
    Any,
    /// An entry that could not be parsed: matches nothing.
    Invalid(String),
}

/// The `Origin` rules of a WebSocket endpoint; see the [module docs](self).
///
/// `Default` is same-origin only, requests without `Origin` allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    same_origin: bool,
    allow_missing: bool,
    allowed: Vec<Allowed>,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        OriginPolicy {
            same_origin: true,
            allow_missing: true,
            allowed: Vec::new(),
        }
    }
}

impl OriginPolicy {
    /// Same-origin only, requests without `Origin` allowed (the default).
    pub fn same_origin() -> Self {
        Self::default()
    }

    /// Any origin (the check is off). Only for endpoints that need no protection, such as
    /// public read-only feeds without cookies.
    pub fn any() -> Self {
        Self::default().allow("*")
    }

    /// Also allows `origin`: `https://app.example.com`, `http://localhost:5173`,
    /// `https://*.example.com` (strict subdomains), `null`, or `*` (anything). An entry
    /// that is not an origin matches nothing (see [`invalid_entries`](Self::invalid_entries)).
    pub fn allow(mut self, origin: &str) -> Self {
        let text = origin.trim();
        let entry = if text == "*" {
            Allowed::Any
        } else if text.eq_ignore_ascii_case("null") {
            Allowed::Null
        } else if let Some((scheme, rest)) = text.split_once("://*.") {
            match Origin::parse(&format!("{scheme}://{rest}")) {
                Some(o) if !o.host.starts_with('[') && o.host.contains('.') => {
                    Allowed::Subdomains(o)
                }
                _ => Allowed::Invalid(text.to_owned()),
            }
        } else {
            match Origin::parse(text) {
                Some(o) if !o.host.contains('*') => Allowed::Exact(o),
                _ => Allowed::Invalid(text.to_owned()),
            }
        };
        self.allowed.push(entry);
        self
    }

    /// Whether the server's own origin (same host and port as `Host`) is allowed. Default:
    /// true.
    pub fn allow_same_origin(mut self, allow: bool) -> Self {
        self.same_origin = allow;
        self
    }

    /// Whether a request without `Origin` (not from a browser) is allowed. Default: true.
    pub fn allow_missing(mut self, allow: bool) -> Self {
        self.allow_missing = allow;
        self
    }

    /// The allow-list entries that are not origins (and so match nothing), to report a
    /// configuration mistake at start-up.
    pub fn invalid_entries(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().filter_map(|a| match a {
            Allowed::Invalid(text) => Some(text.as_str()),
            _ => None,
        })
    }

    /// Decides on a request with this `Origin` header (`None` when absent) and `Host`
    /// header.
    ///
    /// # Errors
    /// [`OriginRefusal`] when the request must be refused.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), OriginRefusal> {
        if self.allowed.contains(&Allowed::Any) {
            return Ok(());
        }
        let Some(origin_text) = origin else {
            return if self.allow_missing {
                Ok(())
            } else {
                Err(OriginRefusal::Missing)
            };
        };
        if origin_text.trim().eq_ignore_ascii_case("null") {
            return if self.allowed.contains(&Allowed::Null) {
                Ok(())
            } else {
                Err(OriginRefusal::NotAllowed)
            };
        }
        let Some(origin) = Origin::parse(origin_text) else {
            return Err(OriginRefusal::NotAllowed);
        };
        if self.same_origin
            && let Some((host, port)) = host.and_then(split_host_port)
            && host == origin.host
            && port.or(default_port(&origin.scheme)) == Some(origin.port)
        {
            return Ok(());
        }
        let allowed = self.allowed.iter().any(|entry| match entry {
            Allowed::Exact(o) => *o == origin,
            Allowed::Subdomains(o) => {
                o.scheme == origin.scheme
                    && o.port == origin.port
                    && origin
                        .host
                        .strip_suffix(o.host.as_str())
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
            }
            Allowed::Null | Allowed::Any | Allowed::Invalid(_) => false,
        });
        if allowed {
            Ok(())
        } else {
            Err(OriginRefusal::NotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_host_and_port_with_default_ports() {
        let p = OriginPolicy::default();
        assert!(
            p.check(Some("http://localhost:3000"), Some("localhost:3000"))
                .is_ok()
        );
        assert!(
            p.check(Some("HTTP://LocalHost:3000"), Some("localhost:3000"))
                .is_ok()
        );
        assert!(
            p.check(Some("https://example.com"), Some("example.com"))
                .is_ok()
        );
        assert!(
            p.check(Some("https://example.com"), Some("example.com:443"))
                .is_ok()
        );
        assert!(
            p.check(Some("http://example.com"), Some("example.com"))
                .is_ok()
        );
        assert!(
            p.check(Some("http://[::1]:8080"), Some("[::1]:8080"))
                .is_ok()
        );
        for (origin, host) in [
            ("http://localhost:3001", "localhost:3000"),
            ("https://example.com", "example.com:8443"),
            ("http://evil.test", "example.com"),
            ("http://example.com.evil.test", "example.com"),
            ("http://localhost:3000", "other:3000"),
            ("garbage", "localhost:3000"),
            ("ftp://localhost:3000", "localhost:3000"),
        ] {
            assert_eq!(
                p.check(Some(origin), Some(host)),
                Err(OriginRefusal::NotAllowed),
                "{origin} vs {host}"
            );
        }
        // Without a Host nothing is same-origin.
        assert!(p.check(Some("http://localhost:3000"), None).is_err());
        assert!(
            p.clone()
                .allow_same_origin(false)
                .check(Some("http://a:1"), Some("a:1"))
                .is_err()
        );
    }

    #[test]
    fn allow_list_is_exact() {
        let p = OriginPolicy::default()
            .allow("https://app.example.com")
            .allow("http://localhost:5173/");
        assert!(
            p.check(Some("https://app.example.com"), Some("api"))
                .is_ok()
        );
        assert!(
            p.check(Some("https://app.example.com:443"), Some("api"))
                .is_ok()
        );
        assert!(p.check(Some("http://localhost:5173"), Some("api")).is_ok());
        for bad in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com.evil.test",
            "https://evilapp.example.com",
            "https://x.app.example.com",
            "http://localhost:5174",
        ] {
            assert!(p.check(Some(bad), Some("api")).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomain_patterns_need_a_real_subdomain() {
        let p = OriginPolicy::default().allow("https://*.example.com");
        assert!(p.check(Some("https://a.example.com"), Some("api")).is_ok());
        assert!(
            p.check(Some("https://a.b.example.com"), Some("api"))
                .is_ok()
        );
        for bad in [
            "https://example.com",
            "https://evilexample.com",
            "https://.example.com",
            "http://a.example.com",
            "https://a.example.com:444",
            "https://a.example.com.evil.test",
        ] {
            assert!(p.check(Some(bad), Some("api")).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_null_any_and_invalid_entries() {
        let p = OriginPolicy::default();
        assert!(p.check(None, Some("h")).is_ok());
        assert_eq!(
            p.clone().allow_missing(false).check(None, Some("h")),
            Err(OriginRefusal::Missing)
        );
        assert_eq!(
            p.check(Some("null"), Some("h")),
            Err(OriginRefusal::NotAllowed)
        );
        assert!(
            p.clone()
                .allow("null")
                .check(Some("null"), Some("h"))
                .is_ok()
        );
        assert!(
            OriginPolicy::any()
                .check(Some("https://evil.test"), Some("h"))
                .is_ok()
        );
        let bad = OriginPolicy::default()
            .allow("example.com")
            .allow("https://*.com");
        assert_eq!(
            bad.invalid_entries().collect::<Vec<_>>(),
            ["example.com", "https://*.com"]
        );
        assert!(bad.check(Some("https://example.com"), Some("h")).is_err());
    }
}
