//! Which proxy a request goes through, as Docker, skopeo and curl read the environment:
//! `HTTPS_PROXY` for https URLs, `HTTP_PROXY` for plain http ones (each also in lower case,
//! and `ALL_PROXY` for both), none for a host that `NO_PROXY` names, and never one for
//! loopback. Requests through a proxy tunnel with `CONNECT`, so the registry's credentials
//! travel inside TLS to the registry; the proxy sees only its own `Proxy-Authorization`.

use std::net::IpAddr;

use crate::error::{Error, Result};

/// The proxies the environment asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// For https URLs: the URL and the variable it came from.
    pub https: Option<(String, &'static str)>,
    /// For plain http URLs.
    pub http: Option<(String, &'static str)>,
    bypass: Vec<Bypass>,
}

/// One entry of `NO_PROXY`.
#[derive(Debug, PartialEq, Eq)]
enum Bypass {
    /// `*`: every host.
    All,
    /// `example.com` (the host and its subdomains) or `.example.com` (subdomains only), with
    /// a port when one is given.
    Name {
        name: String,
        subdomains_only: bool,
        port: Option<u16>,
    },
    /// An address or a CIDR block (`10.0.0.0/8`).
    Block { address: IpAddr, prefix: u8 },
}

impl ProxySettings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<ProxySettings> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The settings that `var` gives for each variable name.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<ProxySettings> {
        let first = |names: &[&'static str]| -> Result<Option<(String, &'static str)>> {
            let found = names.iter().find_map(|name| {
                var(name)
                    .filter(|value| !value.trim().is_empty())
                    .map(|value| (value.trim().to_string(), *name))
            });
            if let Some((value, name)) = &found {
                check_proxy_url(value, name)?;
            }
            Ok(found)
        };
        let bypass = var("NO_PROXY")
            .or_else(|| var("no_proxy"))
            .unwrap_or_default();
        Ok(ProxySettings {
            https: first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])?,
            http: first(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])?,
            bypass: bypass
                .split([',', ' '])
                .filter_map(|entry| parse_bypass(entry.trim()))
                .collect(),
        })
    }

    /// The proxy for `url` (`scheme://host[:port]/…`), with the variable that named it; none
    /// for loopback and for the hosts `NO_PROXY` names.
    pub fn for_url(&self, url: &str) -> Option<&(String, &'static str)> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (host, port) = split_host_port(authority);
        let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
        let chosen = match scheme {
            "https" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        let bypassed =
            super::url::is_loopback(&host) || self.bypass.iter().any(|b| b.covers(&host, port));
        (!bypassed).then_some(chosen)
    }
}

impl Bypass {
    fn covers(&self, host: &str, port: u16) -> bool {
        match self {
            Bypass::All => true,
            Bypass::Name {
                name,
                subdomains_only,
                port: wanted,
            } => {
                let host = host.to_ascii_lowercase();
                let in_domain = host
                    .strip_suffix(name.as_str())
                    .is_some_and(|rest| rest.ends_with('.'));
                let named = in_domain || (!subdomains_only && host == *name);
                named && wanted.is_none_or(|wanted| wanted == port)
            }
            Bypass::Block { address, prefix } => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_block(ip, *address, *prefix)),
        }
    }
}

/// One `NO_PROXY` entry: `*`, `host`, `.domain`, `*.domain`, `host:port`, an address or a CIDR
/// block; none for an empty one.
fn parse_bypass(entry: &str) -> Option<Bypass> {
    if entry.is_empty() {
        return None;
    }
    if entry == "*" {
        return Some(Bypass::All);
    }
    if let Some((address, prefix)) = entry.split_once('/') {
        let address: IpAddr = address.parse().ok()?;
        let most = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.parse::<u8>().ok().filter(|p| *p <= most)?;
        return Some(Bypass::Block { address, prefix });
    }
    if let Ok(address) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        return Some(Bypass::Block { address, prefix });
    }
    let (name, port) = split_host_port(entry);
    let subdomains_only = name.starts_with('.') || name.starts_with("*.");
    Some(Bypass::Name {
        name: name
            .trim_start_matches('*')
            .trim_start_matches('.')
            .to_ascii_lowercase(),
        subdomains_only,
        port,
    })
}

/// `host`, `host:port`, `[v6]:port` → the host (without brackets) and the port.
fn split_host_port(authority: &str) -> (String, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (host.to_string(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host.to_string(), port.parse().ok()),
        _ => (authority.to_string(), None),
    }
}

fn in_block(ip: IpAddr, block: IpAddr, prefix: u8) -> bool {
    let bits = |ip: IpAddr| -> (u128, u8) {
        match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    let ((ip, width), (block, block_width)) = (bits(ip), bits(block));
    if width != block_width {
        return false;
    }
    let shift = u32::from(width - prefix);
    shift >= 128 || ip >> shift == block >> shift
}

/// Refuses a proxy URL that is not `[http[s]://][user:password@]host[:port]`, without quoting
/// it (it may hold the proxy's password).
fn check_proxy_url(value: &str, variable: &str) -> Result<()> {
    let rest = match value.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some((scheme, _)) if scheme.starts_with("socks") => {
            return Err(Error::Usage(format!(
                "{variable} names a SOCKS proxy; only HTTP proxies (CONNECT) are supported"
            )));
        }
        Some(_) => "",
        None => value,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return Err(Error::Usage(format!(
            "{variable} is not a proxy URL such as http://[user:password@]proxy.example.com:3128"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> ProxySettings {
        ProxySettings::from_vars(|name| {
            (vars.iter())
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
        .unwrap()
    }

    fn proxy_of<'a>(settings: &'a ProxySettings, url: &str) -> Option<&'a str> {
        settings.for_url(url).map(|(proxy, _)| proxy.as_str())
    }

    #[test]
    fn each_scheme_has_its_own_variable() {
        let both = settings(&[
            ("https_proxy", "http://tls-proxy:3128"),
            ("HTTP_PROXY", "http://plain-proxy:3128"),
        ]);
        assert_eq!(
            proxy_of(&both, "https://r.example.com/v2/"),
            Some("http://tls-proxy:3128")
        );
        assert_eq!(
            proxy_of(&both, "http://r.example.com:5000/v2/"),
            Some("http://plain-proxy:3128")
        );
        let https_only = settings(&[("HTTPS_PROXY", "proxy:3128")]);
        assert_eq!(proxy_of(&https_only, "http://r.example.com/v2/"), None);
        let all = settings(&[("ALL_PROXY", "http://p:1")]);
        assert_eq!(proxy_of(&all, "http://r.example.com/"), Some("http://p:1"));
    }

    #[test]
    fn loopback_is_never_proxied() {
        let set = settings(&[("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1")]);
        for url in [
            "https://localhost:5000/v2/",
            "http://127.0.0.1:5000/v2/",
            "https://127.1.2.3/v2/",
            "http://[::1]:5000/v2/",
        ] {
            assert_eq!(proxy_of(&set, url), None, "{url}");
        }
    }

    #[test]
    fn no_proxy_names_hosts_domains_ports_and_blocks() {
        let set = settings(&[
            ("HTTPS_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                "internal.example, .corp.example, *.lab.example, mirror.example:5000, 10.0.0.0/8, 192.168.1.7",
            ),
        ]);
        for bypassed in [
            "https://internal.example/v2/",
            "https://registry.internal.example/v2/",
            "https://harbor.corp.example/v2/",
            "https://a.b.lab.example/v2/",
            "https://mirror.example:5000/v2/",
            "https://10.20.30.40:5000/v2/",
            "https://192.168.1.7/v2/",
        ] {
            assert_eq!(proxy_of(&set, bypassed), None, "{bypassed}");
        }
        for proxied in [
            "https://corp.example/v2/",
            "https://lab.example/v2/",
            "https://mirror.example/v2/",
            "https://notinternal.example/v2/",
            "https://11.0.0.1/v2/",
            "https://192.168.1.8/v2/",
        ] {
            assert_eq!(proxy_of(&set, proxied), Some("http://p:1"), "{proxied}");
        }
        let everything = settings(&[("https_proxy", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(proxy_of(&everything, "https://r.example.com/"), None);
    }

    #[test]
    fn a_bad_proxy_url_is_refused_without_quoting_it() {
        let error = ProxySettings::from_vars(|name| {
            (name == "HTTPS_PROXY").then(|| "ftp://user:s3cret@proxy".to_string())
        })
        .unwrap_err();
        assert!(
            error.to_string().starts_with("HTTPS_PROXY is not"),
            "{error}"
        );
        assert!(!error.to_string().contains("s3cret"));
    }
}
