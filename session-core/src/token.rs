//! Session tokens: the secret a client presents (usually in a cookie).
//!
//! A token is 128 bits from the operating system's CSPRNG, written as base64url without
//! padding (22 characters). Nothing about it is derived from user data or time, so it cannot
//! be guessed. It never reaches storage: stores key sessions by the token's
//! [`SessionHandle`], a SHA-256 digest.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::handle::SessionHandle;

/// Length of an encoded token in characters.
pub const TOKEN_LEN: usize = 22;

/// A session token.
///
/// `Debug` and `Display` print a redacted form, so a token logged by accident (in a span, an
/// error, a `dbg!`) does not leak. Use [`SessionToken::expose`] where the real value must be
/// written out, such as a `Set-Cookie` header.
///
/// ```
/// use session_core::SessionToken;
///
/// let token = SessionToken::generate();
/// let text = token.expose();
/// assert_eq!(text.len(), 22);
/// assert_eq!(text.parse::<SessionToken>().unwrap(), token);
/// assert!(!format!("{token:?}").contains(&text));
/// ```
// The handle is a function of the bytes, so the derived comparisons stay those of the bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionToken {
    bytes: [u8; 16],
    /// Derived once: a request uses its token for a load and a save at least, and the digest
    /// showed in profiles of the store's hot path.
    handle: SessionHandle,
}

/// Why a string is not a token.
///
/// The variants say where parsing failed but never echo the input, which may be another
/// user's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The input is not exactly [`TOKEN_LEN`] characters long.
    #[error("expected {TOKEN_LEN} characters, got {0}")]
    Length(usize),
    /// A character outside the base64url alphabet.
    #[error("character {0} is not base64url")]
    Alphabet(usize),
    /// The last character carries bits that a real encoding never sets, so the same bytes
    /// would have two spellings.
    #[error("non-canonical encoding")]
    NonCanonical,
}

impl SessionToken {
    /// A fresh token from the operating system's CSPRNG.
    ///
    /// # Panics
    /// Only if the operating system cannot provide randomness at all, in which case no
    /// secure token can exist and continuing would be the bug.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system's CSPRNG is unavailable");
        SessionToken::from_bytes(bytes)
    }

    /// The token's text, for a cookie or header. The name is loud on purpose.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes)
    }

    /// The storage handle of this token (a SHA-256 digest).
    pub fn handle(&self) -> SessionHandle {
        self.handle
    }

    /// The raw 16 bytes. Handles are derived from these.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// A token with the given bytes. For tests and for stores that must replay a known token;
    /// application code should use [`SessionToken::generate`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        SessionToken {
            bytes,
            handle: SessionHandle::digest(&bytes),
        }
    }

    /// Parses the text form strictly: exactly 22 base64url characters, canonical encoding.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.len() != TOKEN_LEN {
            return Err(TokenError::Length(text.len()));
        }
        if let Some(pos) = text
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(TokenError::Alphabet(pos));
        }
        let mut bytes = [0u8; 16];
        // The alphabet and length are valid, so the only error left is stray low bits in the
        // last character (the engine rejects those by default).
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(16) => Ok(SessionToken::from_bytes(bytes)),
            _ => Err(TokenError::NonCanonical),
        }
    }
}

impl FromStr for SessionToken {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionToken::parse(s)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted session token>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_parse_round_trips(bytes in any::<[u8; 16]>()) {
            let token = SessionToken::from_bytes(bytes);
            let text = token.expose();
            prop_assert_eq!(text.len(), TOKEN_LEN);
            prop_assert_eq!(SessionToken::parse(&text), Ok(token));
        }

        #[test]
        fn wrong_lengths_are_rejected(text in "[A-Za-z0-9_-]{0,40}") {
            prop_assume!(text.len() != TOKEN_LEN);
            prop_assert_eq!(SessionToken::parse(&text), Err(TokenError::Length(text.len())));
        }

        #[test]
        fn foreign_characters_are_rejected(
            bytes in any::<[u8; 16]>(),
            pos in 0..TOKEN_LEN,
            bad in "[^A-Za-z0-9_-]",
        ) {
            // Replace one character by something outside the alphabet of the same byte
            // length, or check the length error if the replacement is multi-byte.
            let text = SessionToken::from_bytes(bytes).expose();
            let mut chars: Vec<String> = text.chars().map(String::from).collect();
            chars[pos] = bad.clone();
            let broken: String = chars.concat();
            let err = SessionToken::parse(&broken).unwrap_err();
            if bad.len() == 1 {
                prop_assert_eq!(err, TokenError::Alphabet(pos));
            } else {
                prop_assert_eq!(err, TokenError::Length(broken.len()));
            }
        }

        #[test]
        fn every_parsed_token_re_encodes_to_its_input(text in "[A-Za-z0-9_-]{22}") {
            // Either rejected as non-canonical, or the one canonical spelling.
            match SessionToken::parse(&text) {
                Ok(token) => prop_assert_eq!(token.expose(), text),
                Err(e) => prop_assert_eq!(e, TokenError::NonCanonical),
            }
        }
    }

    #[test]
    fn non_canonical_last_character_is_rejected() {
        let text = SessionToken::from_bytes([0; 16]).expose();
        assert_eq!(text, "AAAAAAAAAAAAAAAAAAAAAA");
        // 'B' sets a bit below the 128 that the token has.
        assert_eq!(
            SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAB"),
            Err(TokenError::NonCanonical)
        );
    }

    #[test]
    fn generated_tokens_differ_and_are_redacted() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        for shown in [format!("{a:?}"), format!("{a}"), format!("{:?}", Some(&a))] {
            assert!(!shown.contains(&a.expose()), "{shown} leaks the token");
        }
    }
}
