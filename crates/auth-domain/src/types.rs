//! Newtypes parsed once at the edge. A value of these types is valid by construction.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use validator::ValidateEmail;

/// A point in time (UTC).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Why a value was refused by a parser: a message fit to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Invalid {}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Parses the canonical text form of the id.
            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                Uuid::parse_str(raw).map(Self).map_err(|_| Invalid("is not a valid id"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies an account.
    UserId
);
id_type!(
    /// Identifies a session: one refresh-token family on one device.
    SessionId
);
id_type!(
    /// Identifies a registered passkey (ours, not the authenticator's credential id).
    PasskeyId
);

/// An email address, normalized (trimmed, lower-cased) and syntactically valid.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalizes an address (at most 254 characters).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() {
            return Err(Invalid("is required"));
        }
        if normalized.chars().count() > 254 {
            return Err(Invalid("must be at most 254 characters"));
        }
        if !normalized.validate_email() {
            return Err(Invalid("is not a valid email address"));
        }
        Ok(Self(normalized))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A masked form safe for logs: `t***@example.com`.
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }
    }
}

/// Personal data: the Debug form never shows the address.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

/// A username: 3–32 characters of letters, digits, `_`, `.` or `-`, starting with a letter
/// or digit. Unique without regard to case; shown as typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Parses a username as typed.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let len = raw.chars().count();
        if len == 0 {
            return Err(Invalid("is required"));
        }
        if !(3..=32).contains(&len) {
            return Err(Invalid("must be 3 to 32 characters"));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(Invalid(
                "may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(Invalid("must start with a letter or a digit"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// As typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form that uniqueness and login look-ups use.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A password as typed: 8–128 characters, no composition rules. Strength is a policy
/// ([`crate::policy::PasswordPolicy`]) since it depends on the user's other inputs.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Parses a password; length is counted in characters.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if len == 0 {
            return Err(Invalid("is required"));
        }
        if len < 8 {
            return Err(Invalid("must be at least 8 characters"));
        }
        if len > 128 {
            return Err(Invalid("must be at most 128 characters"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// A password as presented at login: anything non-empty up to 1024 bytes is compared,
    /// so that old passwords set under other rules still work.
    pub fn presented(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid("is required"));
        }
        if raw.len() > 1024 {
            return Err(Invalid("is too long"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The secret, for the hasher and the strength check only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A first name or surname: 1–100 characters, no control characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a trimmed name.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Invalid("is required"));
        }
        if raw.chars().count() > 100 {
            return Err(Invalid("must be at most 100 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(Invalid("must not contain control characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(***)")
    }
}

/// A phone number, normalized to digits with an optional leading `+` (7–15 digits, E.164).
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses a number, ignoring spaces, dashes, dots and parentheses.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if digits.is_empty() {
            return Err(Invalid("is required"));
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) || !(7..=15).contains(&digits.len()) {
            return Err(Invalid(
                "must be 7 to 15 digits, optionally starting with '+'",
            ));
        }
        Ok(Self(compact))
    }

    /// The normalized number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber(***)")
    }
}

/// A secret token handed to a user once (refresh, email verification, password reset):
/// 256 random bits, base64url without padding. Never stored: see [`TokenHash`].
#[derive(Clone)]
pub struct PlainToken(SecretString);

impl PlainToken {
    /// Number of random bytes in a token.
    pub const BYTES: usize = 32;

    /// Wraps fresh random bytes.
    pub fn from_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts a token presented by a client if it has the shape of one of ours; anything
    /// else cannot match a stored hash, so it is refused before any look-up.
    pub fn presented(raw: &str) -> Result<Self, Invalid> {
        let decoded = URL_SAFE_NO_PAD
            .decode(raw.trim())
            .map_err(|_| Invalid("is not a valid token"))?;
        if decoded.len() != Self::BYTES {
            return Err(Invalid("is not a valid token"));
        }
        Ok(Self(SecretString::from(raw.trim().to_owned())))
    }

    /// The token text, to hand to the user or to hash.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The form that is stored and looked up.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.expose().as_bytes()).into())
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken(***)")
    }
}

/// SHA-256 of a [`PlainToken`]: what storage keeps. A plain hash suffices because the
/// token carries 256 bits of randomness (no dictionary to attack).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, for cache keys.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A keyed hash of a normalized personal value (email, phone, login identifier): equal
/// inputs give equal indexes, so it serves look-ups and uniqueness without the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub Vec<u8>);

impl BlindIndex {
    /// Lower-case hex, for cache keys.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndex(…)")
    }
}

/// Authenticated ciphertext of a personal value (nonce included).
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// A stored password hash (bcrypt over the keyed pre-hash).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        let cases = [
            (
                " Test@Example.COM ",
                Some("test@example.com"),
                "trimmed and lower-cased",
            ),
            (
                "user+tag@sub.example.org",
                Some("user+tag@sub.example.org"),
                "plus tag kept",
            ),
            ("no-at-sign", None, "no @"),
            ("", None, "empty"),
            ("a@", None, "no domain"),
        ];
        for (raw, expected, why) in cases {
            assert_eq!(
                Email::parse(raw)
                    .ok()
                    .map(|e| e.as_str().to_owned())
                    .as_deref(),
                expected,
                "{why}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err(), "over 254 characters");
    }

    #[test]
    fn usernames_keep_their_case_but_compare_without_it() {
        let name = Username::parse("TestUser").expect("valid");
        assert_eq!(name.as_str(), "TestUser");
        assert_eq!(name.normalized(), "testuser");
        for bad in ["ab", "has space", "a@b.com", "_lead", &"x".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn passwords_are_between_8_and_128_characters() {
        assert!(Password::parse("short").is_err());
        assert!(
            Password::parse(&"é".repeat(128)).is_ok(),
            "characters, not bytes"
        );
        assert!(Password::parse(&"a".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("SecurePass123!").expect("valid")),
            "Password(***)"
        );
    }

    #[test]
    fn phone_numbers_are_normalized() {
        assert_eq!(
            PhoneNumber::parse("+1 (555) 010-0200")
                .expect("valid")
                .as_str(),
            "+15550100200"
        );
        assert!(PhoneNumber::parse("12345").is_err());
        assert!(PhoneNumber::parse("+1-555-CALL-NOW").is_err());
    }

    #[test]
    fn presented_tokens_must_have_our_shape() {
        let token = PlainToken::from_bytes(&[7; 32]);
        let again = PlainToken::presented(token.expose()).expect("round trip");
        assert_eq!(token.hash(), again.hash());
        assert!(PlainToken::presented("abc").is_err());
        assert!(PlainToken::presented("!!!!").is_err());
    }

    #[test]
    fn debug_forms_hide_personal_data() {
        let email = Email::parse("secret.person@example.com").expect("valid");
        assert!(!format!("{email:?}").contains("secret.person"));
    }
}
