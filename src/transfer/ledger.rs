//! Where the blobs of a run's copies landed, so that a blob several images share crosses the
//! network once per run: the copies of `sync` (one after another, or several at once with
//! `--jobs`) each write to their own repository, and a blob one copy has put in a registry is
//! mounted from there by the next that needs it. A copy that needs a blob another is moving
//! to the same registry waits for it rather than moving it a second time.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::digest::Digest;
use crate::reference::RepositoryName;

/// What is known of one blob in one registry.
enum Entry {
    /// A copy is moving it there now.
    Moving,
    /// It is in this repository.
    Landed(RepositoryName),
}

/// The blobs of a run, by registry and digest.
#[derive(Default)]
pub struct Ledger {
    entries: Mutex<HashMap<(String, Digest), Entry>>,
    changed: Condvar,
}

/// What a copy about to move a blob learns from the ledger.
pub enum Claim<'a> {
    /// Nobody has it there: this copy moves it, and says where it landed with
    /// [`Claimed::landed`] (dropped without that, the claim lapses and a waiting copy takes it).
    Mine(Claimed<'a>),
    /// Another copy of this run put it in this repository of the registry.
    Landed(RepositoryName),
}

/// The right to move one blob to one registry, held by the copy moving it.
pub struct Claimed<'a> {
    ledger: &'a Ledger,
    key: (String, Digest),
    landed: bool,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, Digest), Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `digest` for the registry `registry`, waiting while another copy moves it there.
    pub fn claim(&self, registry: &str, digest: &Digest) -> Claim<'_> {
        let key = (registry.to_string(), digest.clone());
        let mut entries = self.lock();
        loop {
            match entries.get(&key) {
                Some(Entry::Landed(holder)) => return Claim::Landed(holder.clone()),
                Some(Entry::Moving) => {
                    entries = (self.changed.wait(entries)).unwrap_or_else(|e| e.into_inner())
                }
                None => {
                    entries.insert(key.clone(), Entry::Moving);
                    return Claim::Mine(Claimed {
                        ledger: self,
                        key,
                        landed: false,
                    });
                }
            }
        }
    }
}

impl Ledger {
    /// Records that `holder` has `digest` already (found there before the run moved it):
    /// copies that need it in `holder`'s registry mount it from there.
    pub fn record(&self, digest: &Digest, holder: RepositoryName) {
        let key = (holder.registry.clone(), digest.clone());
        self.lock().entry(key).or_insert(Entry::Landed(holder));
        self.changed.notify_all();
    }

    /// Where `digest` is known to be in `registry`, without claiming it (for a dry run).
    pub fn landed(&self, registry: &str, digest: &Digest) -> Option<RepositoryName> {
        match self.lock().get(&(registry.to_string(), digest.clone())) {
            Some(Entry::Landed(holder)) => Some(holder.clone()),
            _ => None,
        }
    }
}

impl Claimed<'_> {
    /// Records that the blob is now in `repository`.
    pub fn landed(mut self, repository: RepositoryName) {
        self.ledger
            .lock()
            .insert(self.key.clone(), Entry::Landed(repository));
        self.landed = true;
        self.ledger.changed.notify_all();
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.ledger.lock().remove(&self.key);
            self.ledger.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn digest() -> Digest {
        Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap()
    }

    fn repository(path: &str) -> RepositoryName {
        RepositoryName::parse(&format!("registry.example.com/{path}")).unwrap()
    }

    #[test]
    fn a_blob_moves_once_and_the_others_learn_where_it_landed() {
        let ledger = Ledger::default();
        let moved = AtomicUsize::new(0);
        let landed: Vec<RepositoryName> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|i| {
                    let (ledger, moved) = (&ledger, &moved);
                    scope.spawn(
                        move || match ledger.claim("registry.example.com", &digest()) {
                            Claim::Mine(claimed) => {
                                moved.fetch_add(1, Ordering::Relaxed);
                                std::thread::yield_now();
                                let here = repository(&format!("team/app-{i}"));
                                claimed.landed(here.clone());
                                here
                            }
                            Claim::Landed(holder) => holder,
                        },
                    )
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(moved.load(Ordering::Relaxed), 1);
        assert!(
            landed.windows(2).all(|pair| pair[0] == pair[1]),
            "{landed:?}"
        );
    }

    #[test]
    fn a_claim_dropped_without_landing_passes_to_the_next_copy() {
        let ledger = Ledger::default();
        let Claim::Mine(first) = ledger.claim("r", &digest()) else {
            panic!("the first claim is the first copy's");
        };
        drop(first);
        assert!(matches!(ledger.claim("r", &digest()), Claim::Mine(_)));
        assert!(
            matches!(ledger.claim("other", &digest()), Claim::Mine(_)),
            "registries are apart"
        );
    }

    #[test]
    fn a_holder_found_before_the_run_is_mounted_from() {
        let ledger = Ledger::default();
        let holder = repository("team/app");
        ledger.record(&digest(), holder.clone());
        assert_eq!(
            ledger.landed("registry.example.com", &digest()),
            Some(holder.clone())
        );
        assert!(matches!(
            ledger.claim("registry.example.com", &digest()),
            Claim::Landed(found) if found == holder
        ));
    }
}
