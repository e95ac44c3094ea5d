//! Credentials kept in Docker's format: Docker's own `$DOCKER_CONFIG/config.json` (or
//! `~/.docker/config.json`), and the `auth.json` of podman, buildah and skopeo
//! (containers-auth.json(5), found by [`super::auth_file`]), which has the same fields: its
//! `credHelpers` and `credsStore` (`docker-credential-<name> get|store|erase`), and `auths`
//! (`auth` = base64 of `user:password`, or `username`/`password`, and `identitytoken`: an OAuth2
//! refresh token, which a helper signals with the user name `<token>`). `login` and `logout`
//! write there too, keeping every other setting in the file as it was. Helpers run with a
//! deadline and bounded output (see [`super::cred_helper`]).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::cred_helper;
use super::credentials::{Credentials, Secret, base64_decode, base64_encode};
use crate::atomic::{self, Replace};
use crate::create::{self, PRIVATE_DIR, PRIVATE_FILE};
use crate::error::{Context, Error, Result};
use crate::reference::{DEFAULT_REGISTRY, is_docker_hub, without_scheme};

/// The key Docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The most bytes a file of credentials may hold: far more than any keeps, and a bound on
/// what a file in its place makes this program read.
const MAX_CREDENTIAL_FILE: u64 = 4 << 20;
/// The user name a credential helper answers for an identity token.
const HELPER_TOKEN_USER: &str = "<token>";
/// The user name that goes with an identity token when none is given (ACR's).
const IDENTITY_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";

/// The environment as read at the edge: the value of a variable, by name. Tests pass their
/// own.
pub type Vars<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// One file of credentials in Docker's format, and how its keys name registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialFile {
    /// Where the file is (it may not be there).
    pub path: PathBuf,
    /// How its keys name registries: Docker's way or containers-auth.json(5)'s.
    pub keys: Keys,
}

/// How a file's keys name registries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// Docker's: the host of any key (`https://host/v1/`, `host:5000`, `host/anything`).
    Docker,
    /// containers-auth.json(5)'s: `host`, or a URL of the host (the older form). A
    /// `host/namespace` key holds credentials for that namespace only, so it is never taken for
    /// the registry as a whole.
    Containers,
}

/// Docker's config.json: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn config_file(vars: Vars) -> Option<CredentialFile> {
    let dir = match vars("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(vars("HOME")?).join(".docker"),
    };
    Some(CredentialFile {
        path: dir.join("config.json"),
        keys: Keys::Docker,
    })
}

impl CredentialFile {
    /// The path, as shown in messages.
    pub fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// The credentials this file keeps for `host`, if any. A helper that fails, or does not
    /// answer within `deadline`, is an error.
    pub fn lookup(&self, host: &str, deadline: Duration) -> Result<Option<Credentials>> {
        let Some(config) = self.read()? else {
            return Ok(None);
        };
        let helper = (config.get("credHelpers").and_then(Value::as_object))
            .and_then(|helpers| self.entry(helpers, host))
            .and_then(Value::as_str)
            .or_else(|| config.get("credsStore").and_then(Value::as_str));
        if let Some(helper) = helper {
            return self.helper_get(helper, host, deadline);
        }
        let Some(entry) = (config.get("auths").and_then(Value::as_object))
            .and_then(|auths| self.entry(auths, host))
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
                        self.shown()
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

    /// Stores credentials for `host`: in the `credsStore` helper when one is set (given
    /// `deadline` to do it), else in `auths`. Returns where they went.
    pub fn store(
        &self,
        host: &str,
        credentials: &Credentials,
        deadline: Duration,
    ) -> Result<String> {
        let mut config = self.read()?.unwrap_or_default();
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
                "ServerURL": server_url(host), "Username": username,
                "Secret": credentials.secret_text(),
            });
            self.run_helper(&helper, "store", &request.to_string(), deadline)?;
            return Ok(format!("the {helper} credential helper"));
        }
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(auths) = auths.as_object_mut() else {
            return Err(Error::Usage(format!(
                "{}: \"auths\" is not an object",
                self.shown()
            )));
        };
        auths.retain(|key, _| !self.names(key, host));
        let entry = match &credentials.secret {
            Secret::Password(password) => {
                let pair = format!("{}:{password}", credentials.username);
                serde_json::json!({ "auth": base64_encode(pair.as_bytes()) })
            }
            Secret::IdentityToken(token) => {
                let user = format!("{}:", credentials.username);
                serde_json::json!({
                    "auth": base64_encode(user.as_bytes()), "identitytoken": token
                })
            }
        };
        auths.insert(self.key_for(host), entry);
        self.write(&config)?;
        Ok(format!("{} (unencrypted)", self.shown()))
    }

    /// Removes the credentials for `host` (a `credsStore` helper is given `deadline` to do
    /// it); returns whether there were any.
    pub fn erase(&self, host: &str, deadline: Duration) -> Result<bool> {
        let Some(mut config) = self.read()? else {
            return Ok(false);
        };
        if let Some(helper) = config
            .get("credsStore")
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            let erased = self.run_helper(&helper, "erase", &server_url(host), deadline)?;
            return Ok(erased.is_some());
        }
        let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) else {
            return Ok(false);
        };
        let before = auths.len();
        auths.retain(|key, _| !self.names(key, host));
        if auths.len() == before {
            return Ok(false);
        }
        self.write(&config)?;
        Ok(true)
    }

    /// The file's settings, none when it is not there. A FIFO or device in its place is
    /// refused without waiting on it, and a file over [`MAX_CREDENTIAL_FILE`] without reading
    /// it all (a link is followed: dotfile managers keep these files as links).
    fn read(&self) -> Result<Option<Map<String, Value>>> {
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", self.shown()), e)),
        };
        let refused = |why: &str| Error::Usage(format!("{}: {why}", self.shown()));
        if !(file.metadata())
            .context(|| format!("reading {}", self.shown()))?
            .is_file()
        {
            return Err(refused("not a regular file"));
        }
        let mut bytes = Vec::new();
        (file.take(MAX_CREDENTIAL_FILE + 1).read_to_end(&mut bytes))
            .context(|| format!("reading {}", self.shown()))?;
        if bytes.len() as u64 > MAX_CREDENTIAL_FILE {
            return Err(refused(&format!(
                "larger than {MAX_CREDENTIAL_FILE} bytes; not a file of credentials"
            )));
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            let at = where_json_fails(&e);
            refused(&format!("not a JSON object ({at})"))
        })
    }

    /// Writes the file through a temporary file, readable by its owner only, in a folder
    /// created for its owner only.
    fn write(&self, config: &Map<String, Value>) -> Result<()> {
        let shown = self.shown();
        let bytes = serde_json::to_vec_pretty(config)
            .map_err(|e| Error::io(format!("writing {shown}"), io::Error::other(e)))?;
        let dir = (self.path.parent())
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create::dirs(dir, PRIVATE_DIR).context(|| format!("writing {shown}"))?;
        atomic::replace(Replace::beside(&self.path, PRIVATE_FILE, &shown), |file| {
            file.write_all(&bytes)
                .context(|| format!("writing {shown}"))
        })
    }

    /// The value `map` (`auths`, `credHelpers`) keeps for `host`: under the key written for
    /// it ([`Self::key_for`]) when there is one, as Docker and podman look first, else under
    /// the first other key that names it (an older form, a URL).
    fn entry<'m>(&self, map: &'m Map<String, Value>, host: &str) -> Option<&'m Value> {
        (map.get(&self.key_for(host))).or_else(|| {
            (map.iter())
                .find(|(key, _)| self.names(key, host))
                .map(|(_, value)| value)
        })
    }

    /// Whether a key of this file names the registry `host` as a whole.
    fn names(&self, key: &str, host: &str) -> bool {
        let bare = without_scheme(key);
        let key_host = match self.keys {
            Keys::Containers if bare == key && key.contains('/') => return false,
            _ => bare.split('/').next().unwrap_or_default(),
        };
        key_host.eq_ignore_ascii_case(host) || (is_docker_hub(key_host) && is_docker_hub(host))
    }

    /// The key `login` writes for `host`: Docker's server URL, or the host as podman writes
    /// it.
    fn key_for(&self, host: &str) -> String {
        match self.keys {
            Keys::Docker => server_url(host),
            Keys::Containers if is_docker_hub(host) => DEFAULT_REGISTRY.to_string(),
            Keys::Containers => host.to_string(),
        }
    }

    fn helper_get(
        &self,
        helper: &str,
        host: &str,
        deadline: Duration,
    ) -> Result<Option<Credentials>> {
        let Some(output) = self.run_helper(helper, "get", &server_url(host), deadline)? else {
            return Ok(None);
        };
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
    /// `deadline` (`None`: it keeps nothing for the server).
    fn run_helper(
        &self,
        helper: &str,
        action: &str,
        input: &str,
        deadline: Duration,
    ) -> Result<Option<String>> {
        cred_helper::run(helper, action, input, deadline, &self.shown())
    }
}

/// The server URL Docker gives helpers and `auths` keys for `host`.
fn server_url(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// Where JSON that holds secrets failed to parse, without quoting any of it (serde's own
/// message may quote a value).
fn where_json_fails(error: &serde_json::Error) -> String {
    format!("at line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(keys: Keys) -> CredentialFile {
        CredentialFile {
            path: PathBuf::from("auth.json"),
            keys,
        }
    }

    #[test]
    fn docker_keys_are_compared_by_host() {
        let docker = file(Keys::Docker);
        assert!(docker.names("https://index.docker.io/v1/", "docker.io"));
        assert!(docker.names("registry.example.com", "registry.example.com"));
        assert!(docker.names(
            "https://registry.example.com:5000/v2/",
            "registry.example.com:5000"
        ));
        assert!(docker.names("registry.example.com/team/app", "registry.example.com"));
        assert!(!docker.names("registry.example.com:5000", "registry.example.com"));
        assert_eq!(docker.key_for("docker.io"), DOCKER_HUB_KEY);
    }

    #[test]
    fn containers_keys_name_a_host_or_only_a_namespace() {
        let containers = file(Keys::Containers);
        assert!(containers.names("quay.io", "quay.io"));
        assert!(containers.names("Quay.IO", "quay.io"));
        assert!(containers.names("https://quay.io/v1/", "quay.io"));
        assert!(containers.names("docker.io", "docker.io"));
        assert!(containers.names("https://index.docker.io/v1/", "docker.io"));
        assert!(!containers.names("quay.io/team", "quay.io"));
        assert!(!containers.names("quay.io/team/app", "quay.io"));
        assert!(!containers.names("quay.io:443", "quay.io"));
        assert_eq!(containers.key_for("docker.io"), "docker.io");
        assert_eq!(containers.key_for("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
