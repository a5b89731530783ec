//! Storage handles and the key layout.
//!
//! Stores never see a token: they key a session by the SHA-256 digest of its token. A
//! database dump, `MONITOR` output or a slow log therefore holds nothing that can be replayed
//! as a cookie, and a handle cannot be turned back into a token.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::token::SessionToken;

/// The SHA-256 digest of a session token: how stores name a session.
///
/// Safe to log and to show (for example in a "your devices" list): it identifies a session
/// but cannot be used to act as it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle([u8; 32]);

impl SessionHandle {
    /// The handle of `token`: SHA-256 of its 16 raw bytes.
    pub fn of(token: &SessionToken) -> Self {
        token.handle()
    }

    /// The digest of a token's bytes (tokens compute it once, when made).
    pub(crate) fn digest(token: &[u8; 16]) -> Self {
        SessionHandle(Sha256::digest(token).into())
    }

    /// The digest as 64 lowercase hex characters (in logs, and in a principal's index).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form written by [`SessionHandle::to_hex`] (as read back from a store's
    /// principal index, say).
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| Error::Corrupt(format!("not a session handle: {text:?}")))?;
        Ok(SessionHandle(bytes))
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A handle from a raw digest (as stored in a forward).
    pub fn from_bytes(digest: [u8; 32]) -> Self {
        SessionHandle(digest)
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({})", self.to_hex())
    }
}

/// A validated key prefix, so several applications can share one Redis.
///
/// 1 to 64 characters of `A-Z a-z 0-9 _ - . :`. Braces are excluded because they would
/// change the Redis Cluster hash tag of every key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// Longest namespace accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates a namespace.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
        if name.is_empty() || name.len() > Self::MAX_LEN || !name.chars().all(valid_char) {
            return Err(Error::InvalidInput(format!(
                "namespace must be 1..={} characters of [A-Za-z0-9_.:-], got {name:?}",
                Self::MAX_LEN
            )));
        }
        Ok(Namespace(name))
    }

    /// The namespace text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    /// `session`.
    fn default() -> Self {
        Namespace("session".to_owned())
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({:?})", self.0)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_the_sha256_of_the_token_bytes() {
        let token = SessionToken::from_bytes([0; 16]);
        // sha256 of sixteen zero bytes.
        assert_eq!(
            token.handle().to_hex(),
            "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb"
        );
        assert_eq!(
            SessionHandle::from_hex(&token.handle().to_hex()).unwrap(),
            token.handle()
        );
        assert!(matches!(
            SessionHandle::from_hex("xyz"),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn namespaces_are_validated() {
        assert_eq!(Namespace::default().as_str(), "session");
        for bad in ["", "a{b", "a}b", "sp ace", &"x".repeat(65)] {
            assert!(
                matches!(Namespace::new(bad), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
        assert!(Namespace::new("my-app.v2:sess_1").is_ok());
    }
}
