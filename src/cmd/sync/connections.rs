//! The registries a sync talks to, each connected once for the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::registry::Registry;
use crate::run::upload::Uploads;

/// Connections by registry host and scheme, each made on first use and kept for the run,
/// shared by the jobs running at once.
#[derive(Default)]
pub struct Connections(Mutex<HashMap<Endpoint, Arc<Registry>>>);

/// A registry host and the scheme a URL asked for, if any.
type Endpoint = (String, Option<&'static str>);

impl Connections {
    /// The connection to `host` (with `scheme`), made now if not yet made.
    pub fn open(
        &self,
        uploads: &Uploads<'_>,
        host: &str,
        scheme: Option<&'static str>,
    ) -> Result<Arc<Registry>> {
        let mut made = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (host.to_string(), scheme);
        if let Some(registry) = made.get(&key) {
            return Ok(registry.clone());
        }
        let registry = Arc::new(uploads.connect(host, scheme)?);
        made.insert(key, registry.clone());
        Ok(registry)
    }
}
