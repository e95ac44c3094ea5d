//! The environment variables that set flags' defaults (`DOCKER_PUSHER_*`), read once where the
//! program starts and handed to every flag group, so that nothing below the command line
//! reads the process environment (and a unit test gives exactly the variables it means).

use std::collections::HashMap;

use crate::error::{Error, Result};

/// The prefix of the variables kept.
const PREFIX: &str = "DOCKER_PUSHER_";

/// The `DOCKER_PUSHER_*` variables, as they were when the program started.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// This process's variables of that prefix (those that are not UTF-8 are left out, as
    /// if unset).
    pub fn process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| name.starts_with(PREFIX))
            .collect();
        Env { vars }
    }

    /// An environment of exactly these variables.
    #[cfg(test)]
    pub fn of(pairs: &[(&str, &str)]) -> Env {
        let vars = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Env {
            vars: vars.collect(),
        }
    }

    /// A variable's value; an empty one counts as unset.
    pub fn value(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|value| !value.is_empty())
            .cloned()
    }

    /// A numeric variable; a bad value names the variable in a usage error.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.value(name) {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| Error::Usage(format!("{name}={text:?}: expected a whole number"))),
        }
    }

    /// A byte-size variable (`50M`, `1G`); a bad value names the variable in a usage error.
    pub fn size(&self, name: &str) -> Result<Option<u64>> {
        match self.value(name) {
            None => Ok(None),
            Some(text) => super::parse_size(&text).map(Some).ok_or_else(|| {
                Error::Usage(format!("{name}={text:?}: expected a size like 50M or 1G"))
            }),
        }
    }

    /// A boolean variable: true/false/yes/no/1/0 (any case); anything else names the
    /// variable in a usage error.
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(Error::Usage(format!(
                "{name}={value:?}: expected true, false, yes, no, 1 or 0"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_from_what_was_given_and_bad_ones_name_the_variable() {
        let env = Env::of(&[
            ("DOCKER_PUSHER_TIMEOUT", "30"),
            ("DOCKER_PUSHER_SKIP_TLS", "Yes"),
            ("DOCKER_PUSHER_LARGE_LAYER_THRESHOLD", "2G"),
            ("DOCKER_PUSHER_USERNAME", ""),
            ("DOCKER_PUSHER_RETRY_ATTEMPTS", "three"),
        ]);
        assert_eq!(
            env.number::<u64>("DOCKER_PUSHER_TIMEOUT").unwrap(),
            Some(30)
        );
        assert_eq!(env.bool("DOCKER_PUSHER_SKIP_TLS").unwrap(), Some(true));
        let size = env.size("DOCKER_PUSHER_LARGE_LAYER_THRESHOLD").unwrap();
        assert_eq!(size, Some(2 << 30));
        assert_eq!(env.value("DOCKER_PUSHER_USERNAME"), None);
        assert_eq!(env.value("DOCKER_PUSHER_PASSWORD"), None);
        let bad = env
            .number::<u32>("DOCKER_PUSHER_RETRY_ATTEMPTS")
            .unwrap_err();
        assert!(
            bad.to_string().contains("DOCKER_PUSHER_RETRY_ATTEMPTS"),
            "{bad}"
        );
    }

    #[test]
    fn only_the_programs_own_variables_are_kept() {
        let env = Env::process();
        assert!(env.vars.keys().all(|name| name.starts_with(PREFIX)));
    }
}
