//! Property tests of the validated domain types. Every one of them is built from what a client
//! sends, so for any input: parsing never panics, what is accepted keeps the limits the type
//! documents, and accepted values come back unchanged through serde and `Display`. Where a
//! contract is short enough to state exactly ("3-32 characters of `[A-Za-z0-9_.-]`"), the test
//! states it and checks that `parse` accepts exactly that.

use std::fmt::Debug;

use chat_core::domain::search::{index_text, words, MAX_QUERY_WORDS, MAX_WORD_CHARS};
use chat_core::domain::upload::content_disposition;
use chat_core::domain::{
    from_micros, micros, ClientId, Cursor, DisplayName, Email, Emoji, FileName, MessageBody,
    MessageId, MessageKind, NameCursor, PageSize, Password, Role, RoomId, RoomKind, RoomName,
    SearchQuery, Topic, UploadId, UserId, Username, Visibility,
};
use chat_core::engine::Limits;
use proptest::prelude::*;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::PrimitiveDateTime;
use utoipa::PartialSchema;
use uuid::Uuid;

/// Text that hits the edges more often than uniform Unicode does: white space of several
/// kinds, control characters, path separators, dots, the shortcode alphabet, `@`, letters whose
/// case mapping changes their length, combining marks and emoji sequences.
fn messy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r"[ \t\n\r\x00-\x1f\x7f\x{85}\x{a0}\x{2028}\x{3000}a-zA-Z0-9_.:+@/\\-éßİ\x{301}\x{1F44D}\x{2764}\x{FE0F}\x{200D}]{0,80}",
    ]
}

/// A JSON round trip: an accepted value comes back equal.
fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(value).expect("a validated value serializes");
    let back: T = serde_json::from_str(&json).expect("what was serialized deserializes");
    prop_assert_eq!(&back, value);
    Ok(())
}

/// Deserializing a JSON string validates exactly as `parse` does, so no request body can slip
/// an invalid value past the type.
fn json_agrees_with_parse<T: DeserializeOwned + PartialEq + Debug>(
    raw: &str,
    parsed: Option<T>,
) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(raw).expect("a string serializes");
    prop_assert_eq!(serde_json::from_str::<T>(&json).ok(), parsed);
    Ok(())
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

proptest! {
    #[test]
    fn usernames_are_3_to_32_chars_of_the_ascii_alphabet(raw in messy()) {
        let documented = (3..=32).contains(&chars(&raw))
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let parsed = Username::parse(&raw).ok();
        prop_assert_eq!(parsed.is_some(), documented);
        json_agrees_with_parse(&raw, parsed)?;
    }

    #[test]
    fn valid_usernames_are_kept_as_chosen(raw in "[A-Za-z0-9_.-]{3,32}") {
        let name = Username::parse(&raw).expect("a valid username");
        prop_assert_eq!(name.as_str(), raw.as_str());
        prop_assert_eq!(name.to_string(), raw.clone());
        // Uniqueness is case-insensitive: every spelling of a name has one key.
        prop_assert_eq!(name.key(), raw.to_ascii_lowercase());
        let upper = Username::parse(&raw.to_ascii_uppercase()).expect("a valid username");
        prop_assert_eq!(upper.key(), name.key());
        json_round_trip(&name)?;
    }

    #[test]
    fn display_names_are_trimmed_1_to_64_chars_without_controls(raw in messy()) {
        let trimmed = raw.trim();
        let documented =
            (1..=64).contains(&chars(trimmed)) && !trimmed.chars().any(char::is_control);
        let parsed = DisplayName::parse(&raw).ok();
        prop_assert_eq!(parsed.is_some(), documented);
        if let Some(name) = &parsed {
            prop_assert_eq!(name.as_str(), trimmed);
            json_round_trip(name)?;
        }
        json_agrees_with_parse(&raw, parsed)?;
    }

    #[test]
    fn accepted_emails_have_one_at_and_a_dotted_domain(raw in messy()) {
        let parsed = Email::parse(&raw).ok();
        if let Some(email) = &parsed {
            let s = email.as_str();
            prop_assert_eq!(s, raw.trim());
            prop_assert!(chars(s) <= 254);
            prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
            let (local, domain) = s.split_once('@').expect("an @");
            prop_assert!(!local.is_empty());
            prop_assert!(!domain.contains('@'));
            prop_assert!(domain.contains('.'));
            prop_assert!(!domain.starts_with('.') && !domain.ends_with('.'));
            prop_assert_eq!(email.key(), s.to_lowercase());
            json_round_trip(email)?;
        }
        json_agrees_with_parse(&raw, parsed)?;
    }

    #[test]
    fn ordinary_emails_are_accepted(
        raw in r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9-]{1,10}(\.[A-Za-z0-9-]{1,10}){1,3}",
    ) {
        let email = Email::parse(&raw).expect("a valid email");
        prop_assert_eq!(email.as_str(), raw.as_str());
    }

    #[test]
    fn passwords_are_8_to_1024_chars_kept_verbatim_and_never_printed(
        raw in prop_oneof![messy(), "[ -~]{1000,1030}"],
    ) {
        let parsed = Password::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), (8..=1024).contains(&chars(&raw)));
        if let Ok(password) = parsed {
            // Not trimmed: spaces are part of a secret.
            prop_assert_eq!(password.expose(), raw.as_str());
            prop_assert_eq!(format!("{password:?}"), "Password(***)");
        }
    }

    #[test]
    fn message_bodies_are_trimmed_bounded_and_free_of_controls_but_breaks_and_tabs(
        raw in messy(),
        max_chars in 1usize..100,
    ) {
        let trimmed = raw.trim();
        let documented = (1..=max_chars).contains(&chars(trimmed))
            && trimmed.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\t'));
        let parsed = MessageBody::parse(&raw, max_chars);
        prop_assert_eq!(parsed.is_ok(), documented);
        if let Ok(body) = parsed {
            prop_assert_eq!(body.as_str(), trimmed);
        }
    }

    #[test]
    fn client_ids_are_1_to_64_chars_without_controls(raw in messy()) {
        let documented = (1..=64).contains(&chars(&raw)) && !raw.chars().any(char::is_control);
        let parsed = ClientId::parse(&raw).ok();
        prop_assert_eq!(parsed.is_some(), documented);
        if let Some(id) = &parsed {
            // An idempotency key is compared exactly, so it is kept as sent.
            prop_assert_eq!(id.as_str(), raw.as_str());
            json_round_trip(id)?;
        }
        json_agrees_with_parse(&raw, parsed)?;
    }

    #[test]
    fn room_names_are_trimmed_1_to_100_chars_without_controls(
        raw in prop_oneof![messy(), r"[ a-z\n]{95,110}"],
    ) {
        let trimmed = raw.trim();
        let documented =
            (1..=100).contains(&chars(trimmed)) && !trimmed.chars().any(char::is_control);
        let parsed = RoomName::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), documented);
        if let Ok(name) = parsed {
            prop_assert_eq!(name.as_str(), trimmed);
        }
    }

    #[test]
    fn topics_are_trimmed_up_to_500_chars_with_line_breaks(
        raw in prop_oneof![messy(), r"[ a-z\n\t]{495,510}"],
    ) {
        let trimmed = raw.trim();
        let documented = chars(trimmed) <= 500
            && trimmed.chars().all(|c| !c.is_control() || c == '\n');
        let parsed = Topic::parse(&raw);
        prop_assert_eq!(parsed.is_ok(), documented);
        if let Ok(topic) = parsed {
            prop_assert_eq!(topic.as_str(), trimmed);
        }
    }

    #[test]
    fn accepted_reactions_are_short_emoji_or_shortcodes(raw in messy()) {
        let parsed = Emoji::parse(&raw).ok();
        if let Some(emoji) = &parsed {
            let s = emoji.as_str();
            prop_assert_eq!(s, raw.as_str());
            prop_assert!((1..=Emoji::MAX_BYTES).contains(&s.len()));
            prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
            let shortcode = s.len() > 2
                && s.starts_with(':')
                && s.ends_with(':')
                && s[1..s.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-'));
            let emoji_like = !s.is_ascii() && !s.chars().any(|c| c.is_ascii_alphabetic());
            prop_assert!(shortcode || emoji_like, "{:?} is neither", s);
            json_round_trip(emoji)?;
        }
        json_agrees_with_parse(&raw, parsed)?;
    }

    #[test]
    fn shortcodes_and_emoji_sequences_within_32_bytes_are_accepted(
        raw in prop_oneof![
            ":[A-Za-z0-9_+-]{1,30}:",
            // At most 4 bytes a character, 8 characters: within the 32 bytes.
            r"[\x{1F300}-\x{1F5FF}\x{2764}\x{FE0F}\x{200D}\x{20E3}0-9#*]{1,8}"
                .prop_filter("an emoji has a non-ASCII character", |s| !s.is_ascii()),
        ],
    ) {
        prop_assert_eq!(Emoji::parse(&raw).map(|e| e.as_str().to_owned()), Ok(raw.clone()));
    }

    #[test]
    fn sanitized_file_names_are_one_safe_bounded_component(
        // Dots, white space and separators mixed: the ways to spell `.`, `..` and hidden names.
        raw in prop_oneof![messy(), r"[. \t/\\]{1,8}[a-z.]{0,3}"],
    ) {
        let name = FileName::sanitize(&raw);
        let s = name.as_str();
        prop_assert!(!s.is_empty());
        prop_assert!(s.len() <= FileName::MAX_BYTES);
        prop_assert!(!s.contains(['/', '\\']), "{:?} has a separator", s);
        prop_assert!(!s.chars().any(char::is_control), "{:?} has a control character", s);
        prop_assert_eq!(s, s.trim());
        // Leading dots are dropped (`.hidden` becomes `hidden`), so no name is `.` or `..`
        // or hidden on the downloader's disk.
        prop_assert!(!s.starts_with('.'), "{:?} from {:?} starts with a dot", s, raw);
    }

    #[test]
    fn a_file_name_is_its_last_path_component(
        dirs in prop::collection::vec(messy(), 0..4),
        last in messy().prop_map(|s| s.replace(['/', '\\'], "")),
        windows in any::<bool>(),
    ) {
        let separator = if windows { "\\" } else { "/" };
        let mut path = dirs.join(separator);
        path.push_str(separator);
        path.push_str(&last);
        prop_assert_eq!(FileName::sanitize(&path), FileName::sanitize(&last));
    }

    #[test]
    fn content_disposition_cannot_be_broken_by_a_name(raw in messy(), inline in any::<bool>()) {
        let name = FileName::sanitize(&raw);
        let header = content_disposition(inline, &name);
        // A valid header value: visible ASCII and spaces, so no CR/LF can start a new header.
        prop_assert!(header.bytes().all(|b| (b' '..=b'~').contains(&b)), "{:?}", header);
        let kind = if inline { "inline" } else { "attachment" };
        let quoted = header
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix("; filename=\""));
        prop_assert!(quoted.is_some(), "{:?}", header);
        // The ASCII fallback holds no `"` or `\`: its quoted string ends at the first quote,
        // and what follows is exactly the UTF-8 parameter.
        let (ascii, rest) = quoted.unwrap().split_once('"').expect("a closing quote");
        prop_assert_eq!(chars(ascii), chars(name.as_str()));
        let encoded = rest.strip_prefix("; filename*=UTF-8''");
        prop_assert!(encoded.is_some(), "{:?}", header);
        let decoded = percent_encoding::percent_decode_str(encoded.unwrap()).decode_utf8();
        prop_assert_eq!(decoded.as_deref(), Ok(name.as_str()));
    }

    #[test]
    fn page_sizes_below_one_are_refused_and_large_ones_clamped(requested in any::<i64>()) {
        match PageSize::new(requested) {
            None => prop_assert!(requested < 1),
            Some(size) => {
                prop_assert!(requested >= 1);
                prop_assert_eq!(i64::from(size.get()), requested.min(i64::from(PageSize::MAX)));
            }
        }
    }

    #[test]
    fn cursors_decode_what_they_encode(rank in any::<i64>(), at in any::<i64>(), id in any::<u128>()) {
        let cursor = Cursor { rank, at_micros: at, id: Uuid::from_u128(id) };
        prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn any_string_handed_back_as_a_cursor_is_refused_or_a_cursor(
        raw in prop_oneof![messy(), "[0-9a-fA-F+-]{60,68}"],
    ) {
        if let Some(cursor) = Cursor::decode(&raw) {
            prop_assert_eq!(cursor.encode(), raw);
        }
    }

    #[test]
    fn name_cursors_decode_what_they_encode(name in "[!-~]{0,40}", raw in messy()) {
        let cursor = NameCursor(name);
        let encoded = cursor.encode().expect("an ASCII name");
        prop_assert_eq!(NameCursor::decode(&encoded), Some(cursor));
        if let Some(decoded) = NameCursor::decode(&raw) {
            prop_assert_eq!(decoded.encode(), Some(raw));
        }
    }

    #[test]
    fn cursor_times_keep_microseconds(
        us in micros(PrimitiveDateTime::MIN.assume_utc())..=micros(PrimitiveDateTime::MAX.assume_utc()),
        rank in any::<i64>(),
        id in any::<u128>(),
    ) {
        let cursor = Cursor::new(rank, from_micros(us), Uuid::from_u128(id));
        prop_assert_eq!(cursor.at_micros, us);
    }

    #[test]
    fn times_out_of_range_fall_back_to_the_epoch(us in any::<i64>()) {
        let at = from_micros(us);
        prop_assert!(micros(at) == us || at == time::OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn search_queries_are_bounded_distinct_lowercase_words(text in messy()) {
        let query = SearchQuery::new(&text);
        let found = query.words();
        prop_assert!(found.len() <= MAX_QUERY_WORDS);
        for (i, word) in found.iter().enumerate() {
            prop_assert!(!word.is_empty());
            prop_assert!(chars(word) <= MAX_WORD_CHARS);
            prop_assert!(
                word.chars().all(char::is_alphanumeric),
                "{:?} from {:?} is not letters and digits only", word, text
            );
            prop_assert_eq!(&word.to_lowercase(), word);
            prop_assert!(!found[..i].contains(word), "{:?} twice", word);
        }
        // The query is the text's first distinct words, in order.
        let mut expected: Vec<String> = Vec::new();
        for word in words(&text) {
            if !expected.contains(&word) {
                expected.push(word);
            }
        }
        expected.truncate(MAX_QUERY_WORDS);
        prop_assert_eq!(found, expected.as_slice());
        prop_assert_eq!(query.is_empty(), found.is_empty());
    }

    #[test]
    fn a_query_matches_what_stores_index(query in messy(), body in messy()) {
        let query = SearchQuery::new(&query);
        let indexed = index_text(&body);
        // Stores split the indexed text on single spaces and look for each query word, so
        // the index must be exactly the words, one space apart, for them to agree with
        // `matches`.
        prop_assert!(!indexed.starts_with(' ') && !indexed.ends_with(' '));
        prop_assert!(!indexed.contains("  "));
        let stored: Vec<&str> = indexed.split(' ').filter(|w| !w.is_empty()).collect();
        prop_assert_eq!(stored.clone(), words(&body).collect::<Vec<_>>());
        let by_store = !query.is_empty() && query.words().iter().all(|w| stored.contains(&w.as_str()));
        prop_assert_eq!(query.matches(&body), by_store);
        // A body's own words find it.
        let own = SearchQuery::new(&body);
        prop_assert_eq!(own.matches(&body), !own.is_empty());
    }

    #[test]
    fn ids_round_trip_through_text_and_json(raw in messy(), id in any::<u128>()) {
        let room = RoomId(Uuid::from_u128(id));
        prop_assert_eq!(room.to_string().parse::<RoomId>().ok(), Some(room));
        json_round_trip(&room)?;
        json_round_trip(&UserId(Uuid::from_u128(id)))?;
        json_round_trip(&MessageId(Uuid::from_u128(id)))?;
        json_round_trip(&UploadId(Uuid::from_u128(id)))?;
        if let Ok(parsed) = raw.parse::<RoomId>() {
            prop_assert_eq!(parsed.to_string().parse::<RoomId>().ok(), Some(parsed));
        }
    }

    #[test]
    fn enum_names_parse_only_as_themselves(raw in prop_oneof![
        messy(),
        "member|admin|owner|public|private|group|direct|text|file|system|Admin|OWNER",
    ]) {
        prop_assert_eq!(Role::parse(&raw).map(Role::as_str).unwrap_or(&raw), raw.as_str());
        prop_assert_eq!(Visibility::parse(&raw).map(Visibility::as_str).unwrap_or(&raw), raw.as_str());
        prop_assert_eq!(RoomKind::parse(&raw).map(RoomKind::as_str).unwrap_or(&raw), raw.as_str());
        prop_assert_eq!(MessageKind::parse(&raw).map(MessageKind::as_str).unwrap_or(&raw), raw.as_str());
    }
}

/// The OpenAPI schema of `T` (feature `openapi`) as the rules a JSON Schema validator applies
/// to a string: its length bounds in characters and its pattern.
struct SchemaRules {
    min: Option<usize>,
    max: Option<usize>,
    pattern: Option<Regex>,
}

impl SchemaRules {
    fn of<T: PartialSchema>() -> SchemaRules {
        SchemaRules::from_json(&serde_json::to_value(T::schema()).expect("a schema serializes"))
    }

    fn from_json(schema: &serde_json::Value) -> SchemaRules {
        assert_eq!(schema["type"], "string", "{schema}");
        let bound = |key: &str| schema[key].as_u64().map(|n| n as usize);
        SchemaRules {
            min: bound("minLength"),
            max: bound("maxLength"),
            pattern: schema["pattern"]
                .as_str()
                .map(|p| Regex::new(p).expect("a pattern the regex crate reads")),
        }
    }

    fn pattern(&self) -> &str {
        self.pattern.as_ref().expect("a pattern").as_str()
    }

    fn accepts(&self, s: &str) -> bool {
        let n = chars(s);
        self.min.is_none_or(|min| n >= min)
            && self.max.is_none_or(|max| n <= max)
            && self.pattern.as_ref().is_none_or(|p| p.is_match(s))
    }
}

/// Strings a schema's pattern describes, as a generator of test data would draw them (whole
/// strings: proptest draws a full match, without the anchors).
fn drawn_from(rules: &SchemaRules) -> impl Strategy<Value = String> {
    let anchored = rules.pattern();
    let pattern = anchored
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("an anchored pattern");
    proptest::string::string_regex(pattern).expect("a pattern proptest can draw from")
}

proptest! {
    #[test]
    fn the_schemas_accept_exactly_what_parse_accepts(raw in messy(), max_chars in 1usize..100) {
        let agree = |rules: SchemaRules, parsed: bool| rules.accepts(&raw) == parsed;
        prop_assert!(agree(SchemaRules::of::<Username>(), Username::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<DisplayName>(), DisplayName::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<Email>(), Email::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<Password>(), Password::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<RoomName>(), RoomName::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<Topic>(), Topic::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<ClientId>(), ClientId::parse(&raw).is_ok()));
        prop_assert!(agree(SchemaRules::of::<Cursor>(), raw.is_empty() || Cursor::decode(&raw).is_some()));
        prop_assert!(agree(SchemaRules::of::<NameCursor>(), NameCursor::decode(&raw).is_some()));
        let body = SchemaRules::from_json(
            &serde_json::to_value(MessageBody::schema_with_max(max_chars)).expect("a schema"),
        );
        prop_assert!(agree(body, MessageBody::parse(&raw, max_chars).is_ok()));
        // JSON Schema counts characters, the emoji rule bytes: the schema admits every emoji,
        // and what it admits within 32 bytes is one.
        let emoji = SchemaRules::of::<Emoji>();
        let parsed = Emoji::parse(&raw).is_ok();
        prop_assert!(!parsed || emoji.accepts(&raw));
        prop_assert_eq!(emoji.accepts(&raw) && raw.len() <= Emoji::MAX_BYTES, parsed);
    }

    #[test]
    fn what_the_patterns_describe_parses(
        username in drawn_from(&SchemaRules::of::<Username>()),
        display_name in drawn_from(&SchemaRules::of::<DisplayName>()),
        email in drawn_from(&SchemaRules::of::<Email>()),
        room_name in drawn_from(&SchemaRules::of::<RoomName>()),
        topic in drawn_from(&SchemaRules::of::<Topic>()),
        body in drawn_from(&SchemaRules::of::<MessageBody>()),
        client_id in drawn_from(&SchemaRules::of::<ClientId>()),
        cursor in drawn_from(&SchemaRules::of::<Cursor>()),
        name_cursor in drawn_from(&SchemaRules::of::<NameCursor>()),
    ) {
        prop_assert!(Username::parse(&username).is_ok(), "{:?}", username);
        prop_assert!(DisplayName::parse(&display_name).is_ok(), "{:?}", display_name);
        if chars(&email) <= Email::MAX_CHARS {
            prop_assert!(Email::parse(&email).is_ok(), "{:?}", email);
        }
        prop_assert!(RoomName::parse(&room_name).is_ok(), "{:?}", room_name);
        prop_assert!(Topic::parse(&topic).is_ok(), "{:?}", topic);
        prop_assert!(MessageBody::parse(&body, Limits::default().max_message_chars).is_ok(), "{:?}", body);
        prop_assert!(ClientId::parse(&client_id).is_ok(), "{:?}", client_id);
        prop_assert!(cursor.is_empty() || Cursor::decode(&cursor).is_some(), "{:?}", cursor);
        prop_assert!(NameCursor::decode(&name_cursor).is_some(), "{:?}", name_cursor);
    }

    #[test]
    fn every_kept_file_name_fits_its_schema(raw in messy()) {
        let name = FileName::sanitize(&raw);
        prop_assert!(SchemaRules::of::<FileName>().accepts(name.as_str()), "{:?}", name);
    }
}
