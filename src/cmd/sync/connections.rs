//! The registries a sync talks to, each connected once for the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::registry::Registry;
use crate::run::upload::Uploads;

/// Connections by registry host and scheme, each made on first use and kept for the run,
/// shared by the jobs running at once. Each endpoint has a slot of its own: a job making a
/// slow connection (a registry that is down, retried with back-off) holds up only the jobs
/// that wait for that same registry, never the others.
#[derive(Default)]
pub struct Connections(Mutex<HashMap<Endpoint, Arc<Slot>>>);

/// A registry host and the scheme a URL asked for, if any.
type Endpoint = (String, Option<&'static str>);

/// One endpoint's connection, once made.
type Slot = Mutex<Option<Arc<Registry>>>;

impl Connections {
    /// The connection to `host` (with `scheme`), made now if not yet made.
    pub fn open(
        &self,
        uploads: &Uploads<'_>,
        host: &str,
        scheme: Option<&'static str>,
    ) -> Result<Arc<Registry>> {
        let slot = {
            let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let key = (host.to_string(), scheme);
            slots.entry(key).or_default().clone()
        };
        let mut made = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(registry) = &*made {
            return Ok(registry.clone());
        }
        let registry = Arc::new(uploads.connect(host, scheme)?);
        *made = Some(registry.clone());
        Ok(registry)
    }
}
