//! Users and the validated inputs that describe them.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::UserId;

/// A login name: 3-32 characters of `[A-Za-z0-9_.-]`, unique case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// The shortest username, in characters.
    pub const MIN_CHARS: usize = 3;
    /// The longest username, in characters.
    pub const MAX_CHARS: usize = 32;
    /// The characters a username may hold besides ASCII letters and digits.
    pub const SYMBOLS: [char; 3] = ['_', '.', '-'];

    /// Whether `c` may be part of a username.
    pub fn is_name_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || Self::SYMBOLS.contains(&c)
    }

    /// Validates a username.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let len = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            return Err("must be 3-32 characters");
        }
        if !raw.chars().all(Self::is_name_char) {
            return Err("may contain only letters, digits, '_', '.' and '-'");
        }
        Ok(Username(raw.to_owned()))
    }

    /// The name as the user chose it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes usernames unique case-insensitively.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl TryFrom<String> for Username {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Username::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, 1-64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest display name, in characters (after trimming).
    pub const MAX_CHARS: usize = 64;

    /// Validates a display name (surrounding white space is dropped).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if !(1..=Self::MAX_CHARS).contains(&len) {
            return Err("must be 1-64 characters");
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(DisplayName(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DisplayName::parse(&s)
    }
}

impl From<DisplayName> for String {
    fn from(d: DisplayName) -> String {
        d.0
    }
}

impl From<&Username> for DisplayName {
    fn from(u: &Username) -> Self {
        DisplayName(u.0.clone())
    }
}

/// An email address: one `@` between a non-empty local part and a dotted domain, no white
/// space inside; at most 254 characters as given. Unique case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The longest email address, in characters, counted as given (surrounding white space
    /// included, so the bound is the same before and after trimming).
    pub const MAX_CHARS: usize = 254;

    /// Validates an email address (surrounding white space is dropped).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        let invalid = "must be an email address";
        if s.is_empty()
            || raw.chars().count() > Self::MAX_CHARS
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid);
        }
        let (local, domain) = s.split_once('@').ok_or(invalid)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(invalid);
        }
        Ok(Email(s.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes emails unique case-insensitively.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Email {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// A plaintext password on its way to the hasher: 8-1024 characters. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The shortest password, in characters.
    pub const MIN_CHARS: usize = 8;
    /// The longest password, in characters.
    pub const MAX_CHARS: usize = 1024;

    /// Validates a new password's length.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&raw.chars().count()) {
            return Err("must be 8-1024 characters");
        }
        Ok(Password(raw.to_owned()))
    }

    /// The secret itself, for the hasher.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A user account. `email` is only ever shown to the user themself (see [`User::public`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its unique login name.
    pub username: Username,
    /// The name shown to others.
    pub display_name: DisplayName,
    /// Its email, when known and when the viewer is the user themself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub email: Option<Email>,
    /// When it registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl User {
    /// The user as others see it: without email.
    pub fn public(mut self) -> User {
        self.email = None;
        self
    }
}

/// A user with the password hash that signs them in, as the store returns it for login.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The argon2 PHC string; empty for a user provisioned from a host application's token,
    /// who has no password here.
    pub password_hash: String,
}

/// A user as a host application's tokens name them: the token's issuer and subject. A user
/// provisioned from such a token is found again by this pair, whatever name they got here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalId {
    /// The `iss` claim.
    pub issuer: String,
    /// The `sub` claim.
    pub subject: String,
}

/// A change to a user's profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// A new display name.
    pub display_name: Option<DisplayName>,
    /// A new email, or `Some(None)` to remove it.
    pub email: Option<Option<Email>>,
}
