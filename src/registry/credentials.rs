//! Who to be at a registry: a user name and a secret (a password or an identity token), and
//! their encodings (the `Basic` header, the `auth` field of Docker's config.json). Secrets
//! never appear in messages: `Credentials` prints as redacted.

use std::fmt;

/// Who to be at one registry: a user name and a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
}

/// What proves the user is who they say.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A password or an access token, sent with Basic (to the registry or its token server).
    Password(String),
    /// An OAuth2 refresh token (Docker's `identitytoken`, as ACR and other registries issue),
    /// exchanged at the token server for access tokens and never sent as a password there
    /// unless the server refuses the exchange.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.secret {
            Secret::Password(_) => "password",
            Secret::IdentityToken(_) => "identity token",
        };
        write!(
            f,
            "Credentials {{ username: {:?}, {kind}: <redacted> }}",
            self.username
        )
    }
}

impl Credentials {
    /// A user name and password.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: Secret::Password(password.into()),
        }
    }

    /// The secret's text, whatever its kind.
    pub fn secret_text(&self) -> &str {
        match &self.secret {
            Secret::Password(text) | Secret::IdentityToken(text) => text,
        }
    }

    /// `Basic base64(user:secret)`.
    pub(super) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.secret_text()).as_bytes())
        )
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padded or not; characters outside the alphabet are skipped.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let values: Vec<u32> = (text.bytes())
        .filter_map(|b| BASE64.iter().position(|a| *a == b).map(|p| p as u32))
        .collect();
    let mut out = Vec::with_capacity(values.len() * 3 / 4);
    for chunk in values.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, v)| n | v << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded), plain.as_bytes());
        }
    }

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = Credentials::password("robot$ci", "s3cr:et");
        assert!(!format!("{credentials:?}").contains("s3cr"));
        let credentials = Credentials {
            username: "robot$ci".into(),
            secret: Secret::IdentityToken("refresh-me".into()),
        };
        assert!(!format!("{credentials:?}").contains("refresh-me"));
    }
}
