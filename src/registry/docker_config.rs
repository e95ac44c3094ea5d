//! Credentials kept by Docker: `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`), its
//! `credHelpers` and `credsStore` (`docker-credential-<name> get|store|erase`), and `auths`
//! (`auth` = base64 of `user:password`, or `username`/`password`, and `identitytoken`: an OAuth2
//! refresh token, which a helper signals with the user name `<token>`). `login` and `logout`
//! write there too, keeping every other setting in the file as it was. Helpers run with a
//! deadline and bounded output (see [`super::cred_helper`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::cred_helper;
use super::credentials::{Credentials, Secret, base64_decode, base64_encode};
use crate::atomic::{self, Replace};
use crate::create::{self, PRIVATE_DIR, PRIVATE_FILE};
use crate::error::{Context, Error, Result};
use crate::reference::{is_docker_hub, without_scheme};

/// The key Docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The user name a credential helper answers for an identity token.
const HELPER_TOKEN_USER: &str = "<token>";
/// The user name that goes with an identity token when none is given (ACR's).
const IDENTITY_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// Where Docker keeps its configuration.
pub fn config_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// The credentials Docker keeps for `host`, if any. A helper that fails, or does not answer
/// within `deadline`, is an error.
pub fn lookup(host: &str, deadline: Duration) -> Result<Option<Credentials>> {
    let Some(config) = read_config()? else {
        return Ok(None);
    };
    let helper = (config.get("credHelpers").and_then(Value::as_object))
        .and_then(|helpers| helpers.iter().find(|(key, _)| same_host(key, host)))
        .and_then(|(_, name)| name.as_str())
        .or_else(|| config.get("credsStore").and_then(Value::as_str));
    if let Some(helper) = helper {
        return helper_get(helper, host, deadline);
    }
    let Some(entry) = (config.get("auths").and_then(Value::as_object))
        .and_then(|auths| auths.iter().find(|(key, _)| same_host(key, host)))
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    let field = |name: &str| {
        (entry.get(name).and_then(Value::as_str))
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let (username, password) = match field("auth") {
        Some(encoded) => {
            let decoded = String::from_utf8(base64_decode(&encoded)).unwrap_or_default();
            let Some((username, password)) = decoded.split_once(':') else {
                return Err(Error::Usage(format!(
                    "{}: the auth entry for {host} is not base64 of user:password",
                    shown_path()
                )));
            };
            (Some(username.to_string()), Some(password.to_string()))
        }
        None => (field("username"), field("password")),
    };
    if let Some(token) = field("identitytoken") {
        let username = username.filter(|name| !name.is_empty());
        return Ok(Some(Credentials {
            username: username.unwrap_or_else(|| IDENTITY_TOKEN_USER.into()),
            secret: Secret::IdentityToken(token),
        }));
    }
    Ok(username
        .zip(password)
        .map(|(u, p)| Credentials::password(u, p)))
}

/// Stores credentials for `host`: in the `credsStore` helper when one is set (given `deadline`
/// to do it), else in `auths`. Returns where they went.
pub fn store(host: &str, credentials: &Credentials, deadline: Duration) -> Result<String> {
    let mut config = read_config()?.unwrap_or_default();
    if let Some(helper) = config
        .get("credsStore")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        let username = match credentials.secret {
            Secret::Password(_) => credentials.username.as_str(),
            Secret::IdentityToken(_) => HELPER_TOKEN_USER,
        };
        let request = serde_json::json!({
            "ServerURL": server_url(host), "Username": username, "Secret": credentials.secret_text(),
        });
        run_helper(&helper, "store", &request.to_string(), deadline)?;
        return Ok(format!("the {helper} credential helper"));
    }
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        return Err(Error::Usage(format!(
            "{}: \"auths\" is not an object",
            shown_path()
        )));
    };
    auths.retain(|key, _| !same_host(key, host));
    let entry = match &credentials.secret {
        Secret::Password(password) => {
            let pair = format!("{}:{password}", credentials.username);
            serde_json::json!({ "auth": base64_encode(pair.as_bytes()) })
        }
        Secret::IdentityToken(token) => {
            let user = format!("{}:", credentials.username);
            serde_json::json!({ "auth": base64_encode(user.as_bytes()), "identitytoken": token })
        }
    };
    auths.insert(server_url(host), entry);
    write_config(&config)?;
    Ok(format!("{} (unencrypted)", shown_path()))
}

/// Removes the credentials for `host` (a `credsStore` helper is given `deadline` to do it);
/// returns whether there were any.
pub fn erase(host: &str, deadline: Duration) -> Result<bool> {
    let Some(mut config) = read_config()? else {
        return Ok(false);
    };
    if let Some(helper) = config
        .get("credsStore")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        run_helper(&helper, "erase", &server_url(host), deadline)?;
        return Ok(true);
    }
    let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|key, _| !same_host(key, host));
    if auths.len() == before {
        return Ok(false);
    }
    write_config(&config)?;
    Ok(true)
}

fn read_config() -> Result<Option<Map<String, Value>>> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            let at = where_json_fails(&e);
            Error::Usage(format!("{}: not a JSON object ({at})", path.display()))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes the configuration through a temporary file, readable by its owner only.
fn write_config(config: &Map<String, Value>) -> Result<()> {
    let path = config_path()
        .ok_or_else(|| Error::Usage("set HOME or DOCKER_CONFIG to store credentials".into()))?;
    let shown = path.display().to_string();
    let bytes = serde_json::to_vec_pretty(config)
        .map_err(|e| Error::io(format!("writing {shown}"), io::Error::other(e)))?;
    let dir = (path.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create::dirs(dir, PRIVATE_DIR).context(|| format!("writing {shown}"))?;
    atomic::replace(Replace::beside(&path, PRIVATE_FILE, &shown), |file| {
        file.write_all(&bytes)
            .context(|| format!("writing {shown}"))
    })
}

pub fn shown_path() -> String {
    config_path().map_or_else(|| "config.json".into(), |p| p.display().to_string())
}

/// Whether a `config.json` key (`https://host/v1/`, `host:5000`, …) names `host`.
fn same_host(key: &str, host: &str) -> bool {
    let key = without_scheme(key).split('/').next().unwrap_or_default();
    key.eq_ignore_ascii_case(host) || (is_docker_hub(key) && is_docker_hub(host))
}

/// The server URL Docker gives helpers and `auths` keys for `host`.
fn server_url(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

fn helper_get(helper: &str, host: &str, deadline: Duration) -> Result<Option<Credentials>> {
    let output = run_helper(helper, "get", &server_url(host), deadline)?;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Found {
        username: String,
        secret: String,
    }
    let found: Found = serde_json::from_str(&output).map_err(|e| {
        let at = where_json_fails(&e);
        Error::Denied(format!(
            "docker-credential-{helper} get: unreadable answer ({at})"
        ))
    })?;
    Ok(Some(match found.username.as_str() {
        HELPER_TOKEN_USER => Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            secret: Secret::IdentityToken(found.secret),
        },
        _ => Credentials::password(found.username, found.secret),
    }))
}

/// Runs `docker-credential-<helper> <action>` with `input` on its standard input, within
/// `deadline`.
fn run_helper(helper: &str, action: &str, input: &str, deadline: Duration) -> Result<String> {
    cred_helper::run(helper, action, input, deadline, &shown_path())
}

/// Where JSON that holds secrets failed to parse, without quoting any of it (serde's own
/// message may quote a value).
fn where_json_fails(error: &serde_json::Error) -> String {
    format!("at line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_compared_by_host() {
        assert!(same_host("https://index.docker.io/v1/", "docker.io"));
        assert!(same_host("registry.example.com", "registry.example.com"));
        assert!(same_host(
            "https://registry.example.com:5000/v2/",
            "registry.example.com:5000"
        ));
        assert!(!same_host(
            "registry.example.com:5000",
            "registry.example.com"
        ));
        assert_eq!(server_url("docker.io"), DOCKER_HUB_KEY);
    }
}
