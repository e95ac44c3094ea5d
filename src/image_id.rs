//! Image IDs as a user types them (`sha256:<hex>`, or a bare hex prefix), read the same way
//! wherever an image is chosen by its ID: in an archive (`--image`) and in the cache.

use crate::inert::inert;

/// The shortest bare hex prefix taken as an image ID (Docker shows 12).
pub const MIN_ID_PREFIX: usize = 6;

/// The hex digits of an image ID.
const ID_HEX: usize = 64;

/// Reads `text` as an image ID or a prefix of one: `sha256:` followed by 1 to 64 hex digits,
/// or a bare word of [`MIN_ID_PREFIX`] to 64 hex digits. Gives the hex, lowercased;
/// `Ok(None)` when `text` is no ID (a name, perhaps); an error for `sha256:` followed by what
/// is not a prefix of an ID.
pub fn id_prefix(text: &str) -> Result<Option<String>, String> {
    let is_hex =
        |s: &str| !s.is_empty() && s.len() <= ID_HEX && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(hex) = text.strip_prefix("sha256:") {
        return match is_hex(hex) {
            true => Ok(Some(hex.to_ascii_lowercase())),
            false => Err(format!("\"{}\" is not an image ID", inert(text))),
        };
    }
    Ok((is_hex(text) && text.len() >= MIN_ID_PREFIX).then(|| text.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_lowercased_bounded_and_long_enough() {
        let id = "AbCdEf".repeat(10) + "abcd";
        assert_eq!(id_prefix("sha256:ABC"), Ok(Some("abc".into())));
        assert_eq!(id_prefix("ABCDEF12"), Ok(Some("abcdef12".into())));
        assert_eq!(id_prefix(&id), Ok(Some(id.to_ascii_lowercase())));
        assert_eq!(
            id_prefix(&format!("sha256:{id}")).unwrap().unwrap().len(),
            64
        );
        assert_eq!(id_prefix("abcde"), Ok(None), "too short to be taken bare");
        assert_eq!(id_prefix(&format!("{id}0")), Ok(None), "longer than an ID");
        assert_eq!(id_prefix("app:v1"), Ok(None));
        for refused in ["sha256:", "sha256:xyz", &format!("sha256:{id}0")] {
            assert!(id_prefix(refused).is_err(), "{refused}");
        }
    }
}
