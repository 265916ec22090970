//! Page sizes and opaque cursors for lists.

use time::OffsetDateTime;
use uuid::Uuid;

/// A page size: 1 to [`PageSize::MAX`]; larger requests are clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// The largest page any list returns.
    pub const MAX: u32 = 100;
    /// The page size when none is asked for.
    pub const DEFAULT: PageSize = PageSize(50);

    /// A page size from a request: `None` when below 1; clamped to [`PageSize::MAX`].
    pub fn new(requested: i64) -> Option<PageSize> {
        if requested < 1 {
            None
        } else {
            Some(PageSize(requested.min(i64::from(Self::MAX)) as u32))
        }
    }

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A position in a list ordered by a timestamp and then an id; the cursor names the last item of
/// the previous page. Clients see it as an opaque string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// A rank that orders before the timestamp (the room list puts pinned rooms first).
    pub rank: i64,
    /// The timestamp, in microseconds since the epoch.
    pub at_micros: i64,
    /// The tie-breaking id.
    pub id: Uuid,
}

impl Cursor {
    /// A cursor from an item's sort key.
    pub fn new(rank: i64, at: OffsetDateTime, id: Uuid) -> Cursor {
        Cursor {
            rank,
            at_micros: micros(at),
            id,
        }
    }

    /// The length of a cursor's opaque form: 64 lowercase hex digits.
    pub const ENCODED_LEN: usize = 64;

    /// The opaque form handed to clients: rank, time and id as 64 lowercase hex digits (the
    /// numbers as their two's complement), so that every such string is a position.
    pub fn encode(&self) -> String {
        format!(
            "{:016x}{:016x}{}",
            self.rank as u64,
            self.at_micros as u64,
            self.id.simple()
        )
    }

    /// Parses a cursor a client handed back; `None` unless it is [`Cursor::ENCODED_LEN`]
    /// lowercase hex digits.
    pub fn decode(s: &str) -> Option<Cursor> {
        if s.len() != Self::ENCODED_LEN || !s.bytes().all(is_lower_hex) {
            return None;
        }
        let number = |range| u64::from_str_radix(&s[range], 16).ok().map(|n| n as i64);
        Some(Cursor {
            rank: number(0..16)?,
            at_micros: number(16..32)?,
            id: Uuid::try_parse(&s[32..]).ok()?,
        })
    }
}

/// A position in a list ordered by a name of printable ASCII characters (a username key): the
/// last name of the previous page, hex-encoded so it is opaque and safe in a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameCursor(pub String);

impl NameCursor {
    /// The opaque form handed to clients: two lowercase hex digits per character. A name
    /// beyond printable ASCII has no cursor form (`None`).
    pub fn encode(&self) -> Option<String> {
        self.0
            .bytes()
            .all(|b| b.is_ascii_graphic())
            .then(|| self.0.bytes().map(|b| format!("{b:02x}")).collect())
    }

    /// Parses a cursor a client handed back; `None` unless it is pairs of lowercase hex digits
    /// that each name a printable ASCII character (no space, no control).
    pub fn decode(s: &str) -> Option<NameCursor> {
        let bytes = s.as_bytes();
        if !bytes.len().is_multiple_of(2) || !bytes.iter().copied().all(is_lower_hex) {
            return None;
        }
        let name = bytes
            .chunks(2)
            .map(|pair| {
                let text = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(text, 16)
                    .ok()
                    .filter(u8::is_ascii_graphic)
                    .map(char::from)
            })
            .collect::<Option<String>>()?;
        Some(NameCursor(name))
    }
}

fn is_lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

/// Microseconds since the Unix epoch; the precision every store keeps.
pub fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The time at the given microseconds since the Unix epoch.
pub fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_clamped_and_rejects_below_one() {
        assert_eq!(PageSize::new(0), None);
        assert_eq!(PageSize::new(-5), None);
        assert_eq!(PageSize::new(1).map(PageSize::get), Some(1));
        assert_eq!(PageSize::new(500).map(PageSize::get), Some(100));
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            rank: 1,
            at_micros: 1_700_000_000_123_456,
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nope"), None);
        assert_eq!(Cursor::decode(&"g".repeat(64)), None);
        assert_eq!(Cursor::decode(&c.encode().to_uppercase()), None);
        let negative = Cursor {
            rank: -1,
            at_micros: i64::MIN,
            id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&negative.encode()), Some(negative));
        assert_eq!(
            Cursor::decode(&"0".repeat(64)),
            Some(Cursor {
                rank: 0,
                at_micros: 0,
                id: Uuid::nil()
            })
        );
    }

    #[test]
    fn name_cursor_round_trips_ascii_and_rejects_the_rest() {
        let c = NameCursor("al_ice.b-9".into());
        let encoded = c.encode().expect("an ASCII name");
        assert_eq!(encoded, "616c5f6963652e622d39");
        assert_eq!(NameCursor::decode(&encoded), Some(c));
        assert_eq!(NameCursor::decode(""), Some(NameCursor(String::new())));
        assert_eq!(NameCursor("é".into()).encode(), None);
        assert_eq!(NameCursor("a b".into()).encode(), None);
        for garbage in ["6", "616G", "6C", "80", "+1", "ff", "00", "20", "7f"] {
            assert_eq!(NameCursor::decode(garbage), None, "{garbage}");
        }
    }
}
