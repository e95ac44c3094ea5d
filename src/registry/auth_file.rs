//! Where credentials are looked for, in order. Docker's config.json comes first, and what it
//! keeps for a registry always wins: the auth.json files of podman, buildah and skopeo are read
//! only when it has nothing for the registry. They come in the order containers-auth.json(5)
//! gives: `$REGISTRY_AUTH_FILE` when set (alone, as an explicit file is for podman and
//! skopeo), else `$XDG_RUNTIME_DIR/containers/auth.json` (their primary file), then
//! `${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json`. Each file has config.json's format
//! and rules ([`super::docker_config`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::credentials::Credentials;
use super::docker_config::{self, CredentialFile, Keys, Vars};
use crate::error::{Error, Result};

/// The auth.json of podman, buildah and skopeo, below a folder of theirs.
const CONTAINERS_AUTH: &str = "containers/auth.json";

/// The files credentials are looked for in, in order.
pub struct Searched {
    files: Vec<CredentialFile>,
}

/// Credentials, and the file that gave them.
pub struct Found {
    /// The credentials for the registry.
    pub credentials: Credentials,
    /// The file they came from, which `--verbose` and a refusal name.
    pub file: CredentialFile,
}

impl Searched {
    /// The files this process's environment names (an empty variable counts as unset).
    pub fn from_env() -> Searched {
        Searched::from_vars(&set_var)
    }

    /// The files `vars` names, in the order they are read.
    pub fn from_vars(vars: Vars) -> Searched {
        let containers = |path: PathBuf| CredentialFile {
            path,
            keys: Keys::Containers,
        };
        let primary = match vars("REGISTRY_AUTH_FILE") {
            Some(file) => return Searched::of(vars, vec![containers(PathBuf::from(file))]),
            None => vars("XDG_RUNTIME_DIR").map(|dir| PathBuf::from(dir).join(CONTAINERS_AUTH)),
        };
        let config_home = (vars("XDG_CONFIG_HOME").map(PathBuf::from))
            .or_else(|| vars("HOME").map(|home| PathBuf::from(home).join(".config")));
        let others = [primary, config_home.map(|dir| dir.join(CONTAINERS_AUTH))];
        Searched::of(vars, others.into_iter().flatten().map(containers).collect())
    }

    /// Docker's config.json, then `auth_files`.
    fn of(vars: Vars, auth_files: Vec<CredentialFile>) -> Searched {
        let files = docker_config::config_file(vars)
            .into_iter()
            .chain(auth_files);
        Searched {
            files: files.collect(),
        }
    }

    /// The credentials for `host` from the first file that has any. A file that fails (one that
    /// is not JSON, a helper that fails or does not answer within `deadline`) ends the search:
    /// the files after it are not read in its place.
    pub fn lookup(&self, host: &str, deadline: Duration) -> Result<Option<Found>> {
        for file in &self.files {
            if let Some(credentials) = file.lookup(host, deadline)? {
                return Ok(Some(Found {
                    credentials,
                    file: file.clone(),
                }));
            }
        }
        Ok(None)
    }

    /// The files, as a list for messages.
    pub fn shown(&self) -> String {
        match self.files.is_empty() {
            true => "config.json (set HOME)".into(),
            false => (self.files.iter().map(CredentialFile::shown))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The file `login` and `logout` write: `given` (`--auth-file`, an auth.json), else Docker's
/// config.json as this process's environment names it.
pub fn to_write(given: Option<PathBuf>) -> Result<CredentialFile> {
    match given {
        Some(path) => Ok(CredentialFile {
            path,
            keys: Keys::Containers,
        }),
        None => docker_config::config_file(&set_var)
            .ok_or_else(|| Error::Usage("set HOME or DOCKER_CONFIG to store credentials".into())),
    }
}

/// A variable of this process's environment, an empty one counting as unset.
fn set_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths searched with the variables `set`.
    fn searched(set: &[(&str, &str)]) -> Vec<(String, Keys)> {
        let vars = |name: &str| {
            (set.iter().find(|(key, _)| *key == name)).map(|(_, value)| OsString::from(value))
        };
        (Searched::from_vars(&vars).files.into_iter())
            .map(|file| (file.shown(), file.keys))
            .collect()
    }

    #[test]
    fn config_json_comes_first_then_the_runtime_then_the_config_folder() {
        let home = [("HOME", "/home/u")];
        assert_eq!(
            searched(&home),
            [
                ("/home/u/.docker/config.json".into(), Keys::Docker),
                (
                    "/home/u/.config/containers/auth.json".into(),
                    Keys::Containers
                ),
            ]
        );
        let all = [
            ("HOME", "/home/u"),
            ("DOCKER_CONFIG", "/etc/docker-u"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("XDG_CONFIG_HOME", "/cfg"),
        ];
        assert_eq!(
            searched(&all),
            [
                ("/etc/docker-u/config.json".into(), Keys::Docker),
                (
                    "/run/user/1000/containers/auth.json".into(),
                    Keys::Containers
                ),
                ("/cfg/containers/auth.json".into(), Keys::Containers),
            ]
        );
    }

    #[test]
    fn the_first_file_with_the_registry_answers_and_a_broken_one_ends_the_search() {
        let dir = crate::scratch::dir("auth-file-lookup");
        let home = dir.to_str().unwrap().to_string();
        let vars = move |name: &str| (name == "HOME").then(|| OsString::from(&home));
        let searched = Searched::from_vars(&vars);
        let config = dir.join(".docker/config.json");
        let auth = dir.join(".config/containers/auth.json");
        let write = |path: &PathBuf, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let found = |host: &str| {
            (searched.lookup(host, Duration::from_secs(1)).unwrap())
                .map(|found| (found.credentials.username, found.file.path))
        };
        // "a:b" and "c:d"; a namespace's key is not the registry's.
        write(&auth, r#"{"auths": {"r.example/ns": {"auth": "YTpi"}}}"#);
        assert_eq!(found("r.example"), None);
        write(&auth, r#"{"auths": {"r.example": {"auth": "YTpi"}}}"#);
        assert_eq!(found("r.example"), Some(("a".into(), auth.clone())));
        write(&config, r#"{"auths": {"r.example": {"auth": "Yzpk"}}}"#);
        assert_eq!(found("r.example"), Some(("c".into(), config.clone())));
        assert_eq!(found("other.example"), None);
        write(&config, "{");
        assert!(
            searched
                .lookup("r.example", Duration::from_secs(1))
                .is_err()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn registry_auth_file_replaces_the_containers_files() {
        let set = [
            ("HOME", "/home/u"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("REGISTRY_AUTH_FILE", "/tmp/auth.json"),
        ];
        assert_eq!(
            searched(&set),
            [
                ("/home/u/.docker/config.json".into(), Keys::Docker),
                ("/tmp/auth.json".into(), Keys::Containers),
            ]
        );
        assert_eq!(searched(&[]), []);
    }
}
