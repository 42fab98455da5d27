//! API tokens: `sc1.<user id>.<secret>`. The secret is 256 random bits from the operating
//! system; only its SHA-256 is stored (in the user's `user.token_issued` event), and a
//! presented token is checked by comparing hashes in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "sc1";

/// A token as issued: shown to its user once, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    user_id: String,
    secret: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token is a secret: its debug form names only the user.
        f.debug_struct("Token")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A new random token for `user_id`.
    pub fn issue(user_id: &str) -> Self {
        let mut secret = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Token {
            user_id: user_id.to_owned(),
            secret,
        }
    }

    /// The SHA-256 of the secret, hex: what is stored.
    pub fn hash(&self) -> String {
        hash_secret(&self.secret)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}.{}.{}", self.user_id, hex(&self.secret))
    }
}

/// A presented token, parsed: the user it claims to be and the secret that proves it.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    /// The user the token names.
    pub user_id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Presented {
    /// Parses `sc1.<user id>.<64 hex digits>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?.strip_prefix('.')?;
        let (user_id, secret) = rest.rsplit_once('.')?;
        if user_id.is_empty() || user_id.len() > 64 || secret.len() != 64 {
            return None;
        }
        Some(Presented {
            user_id: user_id.to_owned(),
            secret: unhex(secret)?,
        })
    }

    /// Whether the secret hashes to `stored` (hex), compared in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        let presented = hash_secret(&self.secret);
        !stored.is_empty()
            && presented.len() == stored.len()
            && bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
    }
}

/// SHA-256 of `secret`, hex.
pub fn hash_secret(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_parses_and_matches_its_hash_only() {
        let token = Token::issue("u1");
        let text = token.to_string();
        let presented = Presented::parse(&text).unwrap();
        assert_eq!(presented.user_id, "u1");
        assert!(presented.matches(&token.hash()));
        assert!(!presented.matches(&Token::issue("u1").hash()));
        assert!(!presented.matches(""));
        assert!(
            !format!("{token:?}").contains(&text[8..]),
            "debug hides the secret"
        );
        for bad in [
            "",
            "sc1",
            "sc1.u1",
            "sc1..00",
            "xx1.u1.00",
            &text[..text.len() - 1],
        ] {
            assert!(Presented::parse(bad).is_none(), "{bad}");
        }
    }
}
