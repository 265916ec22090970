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

    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.rank, self.at_micros, self.id.simple())
    }

    /// Parses a cursor a client handed back; `None` when it is not one of ours.
    pub fn decode(s: &str) -> Option<Cursor> {
        let mut parts = s.splitn(3, '.');
        let rank = parts.next()?.parse().ok()?;
        let at_micros = parts.next()?.parse().ok()?;
        let id = Uuid::try_parse(parts.next()?).ok()?;
        Some(Cursor {
            rank,
            at_micros,
            id,
        })
    }
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
        assert_eq!(Cursor::decode("1.2.not-a-uuid"), None);
    }
}
