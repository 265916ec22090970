//! The domain: plain types and validated inputs that cannot hold invalid values.

mod ids;
mod message;
mod moderation;
mod page;
mod room;
#[cfg(feature = "openapi")]
pub mod schemas;
pub mod search;
pub mod upload;
mod user;

pub use ids::{MessageId, Rev, RoomId, Seq, SessionId, UploadId, UserId};
pub use message::{
    Appended, Attachment, ClientId, Emoji, HistoryAnchor, HistoryPage, Message, MessageBody,
    MessageEdit, MessageKind, NewMessage, Reaction, ReactionChange, ReactionEdit, ThreadSummary,
};
pub use moderation::{Ban, Block};
pub use page::{from_micros, micros, Cursor, NameCursor, PageSize};
pub use room::{
    Member, Membership, MembershipView, NewRoom, Role, Room, RoomKind, RoomListItem, RoomName,
    RoomPatch, RoomPosition, SettingsPatch, Topic, Visibility,
};
pub use search::SearchQuery;
pub use upload::{FileName, FileType, Upload};
pub use user::{Credentials, DisplayName, Email, ExternalId, Password, User, UserPatch, Username};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("al_ice.B-9").is_ok());
        assert!(Username::parse("ålice").is_err());
        assert_eq!(Username::parse("Alice").unwrap().key(), "alice");
    }

    #[test]
    fn passwords_are_8_to_1024_chars_and_never_printed() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pw").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("a@b.co").is_ok());
        assert!(Email::parse("a@b").is_err());
        assert!(Email::parse("@b.co").is_err());
        assert!(Email::parse("a b@c.co").is_err());
        assert!(Email::parse("a@@b.co").is_err());
        assert_eq!(Email::parse("A@B.Co").unwrap().key(), "a@b.co");
    }

    #[test]
    fn message_bodies_are_trimmed_and_bounded() {
        assert_eq!(MessageBody::parse("  hi \n", 10).unwrap().as_str(), "hi");
        assert!(MessageBody::parse("   ", 10).is_err());
        assert!(MessageBody::parse("12345678901", 10).is_err());
        assert!(MessageBody::parse("line\nbreak\tok", 100).is_ok());
        assert!(MessageBody::parse("bell\u{7}", 100).is_err());
    }

    #[test]
    fn room_names_and_topics_are_bounded() {
        assert!(RoomName::parse(" ").is_err());
        assert!(RoomName::parse(&"n".repeat(101)).is_err());
        assert_eq!(RoomName::parse(" general ").unwrap().as_str(), "general");
        assert!(Topic::parse(&"t".repeat(501)).is_err());
        assert!(Topic::parse("").is_ok());
    }

    #[test]
    fn reactions_are_emoji_or_shortcodes() {
        for ok in [
            "👍",
            "❤️",
            "1️⃣",
            "👨‍👩‍👧",
            ":thumbsup:",
            ":+1:",
            ":party_parrot:",
        ] {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "lol",
            "::",
            ":no spaces:",
            "👍 ",
            "x👍",
            ":a\u{0}:",
            "<b>",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad}");
        }
        assert!(Emoji::parse(&"👍".repeat(8)).is_ok());
        assert!(Emoji::parse(&"👍".repeat(9)).is_err());
    }

    #[test]
    fn roles_are_ranked() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }
}
