//! `--shard K/N`: the share of a list one machine of N takes. An image belongs to shard K when
//! the sha256 of its source name (`docker.io/library/nginx:1.27`, or an archive line's path as
//! written), read as a big-endian number from its first 8 bytes, is K modulo N: the same on
//! every machine and in every run, with no coordinator.

use sha2::{Digest, Sha256};

/// One share of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Parses `K/N` (0 ≤ K < N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let invalid = || {
            format!(
                "--shard {text}: expected K/N with 0 <= K < N, such as 0/4 \
                 (in an Indexed Job: --shard $JOB_COMPLETION_INDEX/N)"
            )
        };
        let (index, count) = text.split_once('/').ok_or_else(invalid)?;
        let index: u64 = index.trim().parse().map_err(|_| invalid())?;
        let count: u64 = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 || index >= count {
            return Err(invalid());
        }
        Ok(Shard { index, count })
    }

    /// Whether the image named `name` is this shard's.
    pub fn takes(&self, name: &str) -> bool {
        let hash = Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        u64::from_be_bytes(first) % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_falls_in_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3)
            .map(|k| Shard::parse(&format!("{k}/3")).unwrap())
            .collect();
        let mut per_shard = [0; 3];
        for i in 0..300 {
            let name = format!("registry.example.com/team/app-{i}:v1");
            let taken: Vec<usize> = (0..3).filter(|k| shards[*k].takes(&name)).collect();
            assert_eq!(taken.len(), 1, "{name}");
            per_shard[taken[0]] += 1;
        }
        assert!(per_shard.iter().all(|n| *n > 60), "{per_shard:?}");
    }

    #[test]
    fn the_hash_is_fixed_across_machines_and_versions() {
        // sha256("docker.io/library/nginx:1.27") starts 6965a10c15290ad0 (sha256sum says so),
        // which is 3 modulo 7: moving an image to another shard between releases would have
        // two machines copy it.
        let name = "docker.io/library/nginx:1.27";
        assert!(Shard::parse("3/7").unwrap().takes(name));
        assert!(!Shard::parse("4/7").unwrap().takes(name));
    }

    #[test]
    fn malformed_shards_are_refused() {
        for bad in ["", "1", "3/3", "-1/3", "a/b", "0/0", "1/2/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Shard::parse(" 2 / 5 ").unwrap().to_string(), "2/5");
    }
}
