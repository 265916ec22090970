//! JSON Schemas of the validated types (feature `openapi`), built from the constants their
//! `parse` uses, so a published document states exactly the rule the engine enforces: a string
//! the schema accepts is one `parse` accepts, and the other way round.
//!
//! Patterns use only what ECMA-262, Python's `re` and Rust's `regex` read alike (classes,
//! ranges, `\uXXXX` escapes, bounded repetition), because the document's readers are JSON
//! Schema validators and test generators of every language. Lengths count characters (code
//! points), as JSON Schema and `str::chars` both do.

use std::fmt::Write;

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::{
    ClientId, Cursor, DisplayName, Email, Emoji, FileName, MessageBody, NameCursor, Password, Role,
    RoomName, Topic, Username,
};
use crate::engine::Limits;

/// What `char::is_whitespace` accepts (Unicode `White_Space`): what `str::trim` drops.
const WHITESPACE: &[(char, char)] = &[
    ('\t', '\r'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// What `char::is_control` accepts (general category `Cc`): C0, DEL and C1.
const CONTROL: &[(char, char)] = &[('\0', '\u{1f}'), ('\u{7f}', '\u{9f}')];

/// ASCII letters.
const ASCII_LETTERS: &[(char, char)] = &[('A', 'Z'), ('a', 'z')];

/// ASCII letters and digits.
const ASCII_ALPHANUMERIC: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('a', 'z')];

/// All of ASCII.
const ASCII: &[(char, char)] = &[('\0', '\u{7f}')];

/// The characters of `ranges` without those of `except`.
fn without(ranges: &[(char, char)], except: &[char]) -> Vec<(char, char)> {
    let mut out = Vec::new();
    for &(from, to) in ranges {
        let mut start = Some(from);
        for c in from..=to {
            if except.contains(&c) {
                if let Some(s) = start.take() {
                    if s < c {
                        out.push((s, prev(c)));
                    }
                }
            } else if start.is_none() {
                start = Some(c);
            }
        }
        if let Some(s) = start {
            out.push((s, to));
        }
    }
    out
}

fn prev(c: char) -> char {
    char::from_u32(u32::from(c) - 1).expect("ranges here stay clear of the surrogates")
}

fn single(chars: &[char]) -> Vec<(char, char)> {
    chars.iter().map(|&c| (c, c)).collect()
}

/// A character inside a class, written so every regex dialect reads it literally: printable
/// ASCII but the class syntax (`\ [ ] ^ -` and the set operators' `& ~`) as itself, anything
/// else as `\uXXXX`.
fn escaped(c: char, out: &mut String) {
    if c.is_ascii_graphic() && !"\\[]^-&~".contains(c) {
        out.push(c);
    } else {
        let code = u32::from(c);
        assert!(
            code <= 0xffff,
            "only the Basic Multilingual Plane is written"
        );
        write!(out, "\\u{code:04x}").expect("writing to a String");
    }
}

/// A character class: `[...]` of the ranges of every set, or `[^...]` with `negated`.
fn class(negated: bool, sets: &[&[(char, char)]]) -> String {
    let mut out = String::from(if negated { "[^" } else { "[" });
    for &(from, to) in sets.iter().copied().flatten() {
        escaped(from, &mut out);
        if to != from {
            out.push('-');
            escaped(to, &mut out);
        }
    }
    out.push(']');
    out
}

/// A pattern of text that is trimmed before it is checked: any white space around a core of
/// `min..=max` characters that starts and ends with neither white space nor a control
/// character, and holds no control character but `controls`.
fn trimmed(min: usize, max: usize, controls: &[char]) -> String {
    let space = class(false, &[WHITESPACE]);
    let edge = class(true, &[WHITESPACE, CONTROL]);
    let inner = class(true, &[&without(CONTROL, controls)]);
    assert!(1 <= max && min <= max, "a core of {min}..={max} characters");
    let core = match min {
        _ if max == 1 => edge,
        0 | 1 => format!("{edge}(?:{inner}{{0,{}}}{edge})?", max - 2),
        _ => format!("{edge}{inner}{{{},{}}}{edge}", min - 2, max - 2),
    };
    let core = if min == 0 {
        format!("(?:{core})?")
    } else {
        core
    };
    format!("^{space}*{core}{space}*$")
}

/// A string schema with a pattern and a description.
fn text(pattern: String, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

/// `schema`, or `null`: the schema of an optional field that also takes `null`.
pub fn nullable(schema: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(schema)
        .into()
}

impl PartialSchema for Username {
    fn schema() -> RefOr<Schema> {
        let symbols = single(&Username::SYMBOLS);
        let chars = class(false, &[ASCII_ALPHANUMERIC, &symbols]);
        text(
            format!(
                "^{chars}{{{},{}}}$",
                Username::MIN_CHARS,
                Username::MAX_CHARS
            ),
            "A login name: 3-32 characters of `[A-Za-z0-9_.-]`, unique case-insensitively.",
        )
        .min_length(Some(Username::MIN_CHARS))
        .max_length(Some(Username::MAX_CHARS))
        .into()
    }
}

impl ToSchema for Username {}

impl PartialSchema for DisplayName {
    fn schema() -> RefOr<Schema> {
        text(
            trimmed(1, DisplayName::MAX_CHARS, &[]),
            "A display name: 1-64 characters without control characters, once the white \
             space around it is dropped.",
        )
        .min_length(Some(1))
        .into()
    }
}

impl ToSchema for DisplayName {}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        let space = class(false, &[WHITESPACE]);
        let part = class(true, &[WHITESPACE, CONTROL, &single(&['@'])]);
        let edge = class(true, &[WHITESPACE, CONTROL, &single(&['@', '.'])]);
        text(
            format!("^{space}*{part}+@{edge}{part}*\\.{part}*{edge}{space}*$"),
            "An email address: one `@` between a non-empty local part and a domain with a dot \
             inside, no white space or control characters (white space around it is \
             dropped); at most 254 characters. Unique case-insensitively.",
        )
        .max_length(Some(Email::MAX_CHARS))
        .into()
    }
}

impl ToSchema for Email {}

impl PartialSchema for Password {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(Password::MIN_CHARS))
            .max_length(Some(Password::MAX_CHARS))
            .description(Some("A new password: 8-1024 characters, kept as given."))
            .into()
    }
}

impl ToSchema for Password {}

impl PartialSchema for RoomName {
    fn schema() -> RefOr<Schema> {
        text(
            trimmed(1, RoomName::MAX_CHARS, &[]),
            "A room name: 1-100 characters without control characters, once the white space \
             around it is dropped.",
        )
        .min_length(Some(1))
        .into()
    }
}

impl ToSchema for RoomName {}

impl PartialSchema for Topic {
    fn schema() -> RefOr<Schema> {
        text(
            trimmed(0, Topic::MAX_CHARS, &Topic::CONTROLS),
            "A room topic: up to 500 characters, once the white space around it is dropped; \
             no control characters but line breaks.",
        )
        .into()
    }
}

impl ToSchema for Topic {}

impl MessageBody {
    /// The schema of a body of at most `max_chars` characters (the server's configured
    /// maximum; the document's `MessageBody` is this with the default).
    pub fn schema_with_max(max_chars: usize) -> RefOr<Schema> {
        text(
            trimmed(1, max_chars, &MessageBody::CONTROLS),
            &format!(
                "A message body: 1-{max_chars} characters, once the white space around it is \
                 dropped; no control characters but line breaks and tabs."
            ),
        )
        .min_length(Some(1))
        .into()
    }

    /// The schema of a body that says nothing: empty or white space only (a file message's
    /// absent caption).
    pub fn blank_schema() -> RefOr<Schema> {
        let space = class(false, &[WHITESPACE]);
        text(format!("^{space}*$"), "Empty, or white space only.").into()
    }
}

impl PartialSchema for MessageBody {
    fn schema() -> RefOr<Schema> {
        MessageBody::schema_with_max(Limits::default().max_message_chars)
    }
}

impl ToSchema for MessageBody {}

impl PartialSchema for ClientId {
    fn schema() -> RefOr<Schema> {
        text(
            format!("^{}{{1,{}}}$", class(true, &[CONTROL]), ClientId::MAX_CHARS),
            "The sender's idempotency key: 1-64 characters, no control characters.",
        )
        .min_length(Some(1))
        .max_length(Some(ClientId::MAX_CHARS))
        .into()
    }
}

impl ToSchema for ClientId {}

impl PartialSchema for Emoji {
    fn schema() -> RefOr<Schema> {
        let shortcode = class(false, &[ASCII_ALPHANUMERIC, &single(&['_', '+', '-'])]);
        let no_letter = class(true, &[ASCII_LETTERS, WHITESPACE, CONTROL]);
        let not_ascii = class(true, &[ASCII, WHITESPACE, CONTROL]);
        text(
            format!("^(?::{shortcode}+:|{no_letter}*{not_ascii}{no_letter}*)$"),
            "A reaction: an emoji (at least one character beyond ASCII, no ASCII letters), or \
             a `:shortcode:` of ASCII letters, digits, `_`, `+` and `-`; no white space or \
             control characters; 1-32 bytes of UTF-8 (at most 32 characters, fewer when they \
             take more than a byte each).",
        )
        .min_length(Some(1))
        .max_length(Some(Emoji::MAX_BYTES))
        .into()
    }
}

impl ToSchema for Emoji {}

impl PartialSchema for FileName {
    fn schema() -> RefOr<Schema> {
        let separators = single(&['/', '\\']);
        let first = class(true, &[WHITESPACE, CONTROL, &separators, &single(&['.'])]);
        let inner = class(true, &[CONTROL, &separators]);
        let last = class(true, &[WHITESPACE, CONTROL, &separators]);
        text(
            format!("^{first}(?:{inner}*{last})?$"),
            "A file's name as kept: the last path component of what the client sent, without \
             control characters, leading dots or white space around it, at most 255 bytes of \
             UTF-8; `file` when nothing is left.",
        )
        .max_length(Some(FileName::MAX_BYTES))
        .into()
    }
}

impl ToSchema for FileName {}

impl PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        text(
            format!("^(?:[0-9a-f]{{{}}})?$", Cursor::ENCODED_LEN),
            "The previous page's `next_cursor` (opaque); empty or absent for the first page.",
        )
        .into()
    }
}

impl ToSchema for Cursor {}

impl PartialSchema for NameCursor {
    fn schema() -> RefOr<Schema> {
        text(
            "^(?:2[1-9a-f]|[3-6][0-9a-f]|7[0-9a-e])*$".to_owned(),
            "The previous page's `next_cursor` (opaque); empty or absent for the first page.",
        )
        .into()
    }
}

impl ToSchema for NameCursor {}

/// The schema of the roles in `roles` (for fields that take only some of them).
pub fn roles(roles: &[Role]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(roles.iter().map(|r| r.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(ranges: &[(char, char)], c: char) -> bool {
        ranges.iter().any(|&(from, to)| (from..=to).contains(&c))
    }

    #[test]
    fn the_class_tables_are_the_standard_library_s() {
        for c in '\0'..=char::MAX {
            assert_eq!(within(WHITESPACE, c), c.is_whitespace(), "{c:?}");
            assert_eq!(within(CONTROL, c), c.is_control(), "{c:?}");
        }
    }

    #[test]
    fn classes_escape_what_regex_dialects_read_differently() {
        assert_eq!(class(false, &[&single(&['a', '-', '.'])]), "[a\\u002d.]");
        assert_eq!(
            class(true, &[&[(' ', ' '), ('\u{85}', '\u{85}')]]),
            "[^\\u0020\\u0085]"
        );
        assert_eq!(class(true, &[&without(&[('a', 'e')], &['c'])]), "[^a-bd-e]");
        assert_eq!(without(&[('a', 'a')], &['a']), vec![]);
        assert_eq!(without(CONTROL, &['\n']).len(), 3);
    }

    #[test]
    fn trimmed_patterns_bound_the_core() {
        let p = trimmed(1, 64, &[]);
        assert!(p.contains("{0,62}"), "{p}");
        let topic = trimmed(0, 500, &['\n']);
        assert!(topic.contains("{0,498}"), "{topic}");
        assert!(topic.starts_with('^') && topic.ends_with('$'));
    }
}
