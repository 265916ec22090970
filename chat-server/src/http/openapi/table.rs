//! Every operation of the API, one entry each, in the order of API.md. The route templates of
//! `templates.rs` are the list of paths this table must cover (a test holds the two together).

use chat_core::domain::upload::ALLOWED_TYPES;
use chat_core::domain::{HistoryPage, Member, MembershipView, Message, Room, User};
use chat_core::engine::MAX_PRESENCE_QUERY;
use chat_core::engine::{
    AddMember, BanPage, BlockPage, ChangePassword, ChangeRole, CreateRoom, DeleteAccount,
    DeliveredState, EditMessage, LoginResult, MarkSeq, MemberPage, Presence, PublicRoomPage,
    ReadState, ReceiptPage, Register, RoomPage, RoomSettings, RoomStats, SearchPage, SendMessage,
    SetPresence, Typing, UnreadSummary, UpdateMe, UpdateRoom, UploadLink, UploadView, UserPage,
    WsTicket,
};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{Content, Header};

use super::operation::{uuid, Op};
use crate::http::accounts::{Login, Refresh, TokenForm};
use crate::http::ops::{Health, Ready};
use crate::http::rooms::OpenDirect;
use crate::http::signals::PresenceList;
use crate::http::uploads::AllowedTypes;

/// The tags, in the order the docs page shows them, with what each groups.
pub(super) const TAGS: &[(&str, &str)] = &[
    (AUTH, "Accounts, sign-in and tokens."),
    (USERS, "Profiles, user search and blocks."),
    (
        ROOMS,
        "Group rooms, direct rooms and the caller's room settings.",
    ),
    (MEMBERS, "Members, roles and bans."),
    (MESSAGES, "Messages, threads, reactions and search."),
    (
        RECEIPTS,
        "Read and delivered watermarks, unread counts and typing.",
    ),
    (PRESENCE, "Who is online."),
    (
        UPLOADS,
        "Files: upload, metadata, content and signed links.",
    ),
    (LIVE, "The WebSocket and its tickets."),
    (
        OPERATIONS,
        "Health, readiness, metrics, this document and the web client.",
    ),
];

const AUTH: &str = "auth";
const USERS: &str = "users";
const ROOMS: &str = "rooms";
const MEMBERS: &str = "members";
const MESSAGES: &str = "messages";
const RECEIPTS: &str = "receipts";
const PRESENCE: &str = "presence";
const UPLOADS: &str = "uploads";
const LIVE: &str = "websocket";
const OPERATIONS: &str = "operations";

/// Every operation.
pub(super) fn operations() -> Vec<Op> {
    let mut ops = accounts();
    ops.extend(rooms());
    ops.extend(messages());
    ops.extend(signals());
    ops.extend(uploads());
    ops.extend(live_and_operations());
    ops
}

fn accounts() -> Vec<Op> {
    vec![
        Op::post("/v1/auth/register", "register", AUTH, "Create an account")
            .public()
            .json::<Register>()
            .reply::<User>(201, "The new user.")
            .errors(&[400, 409, 413, 422]),
        Op::post("/v1/auth/login", "login", AUTH, "Sign in")
            .public()
            .json::<Login>()
            .reply::<LoginResult>(200, "Tokens and the user.")
            .errors(&[400, 401, 422, 429]),
        Op::post(
            "/v1/auth/token",
            "token",
            AUTH,
            "Sign in (OAuth2 password grant)",
        )
        .public()
        .describe("The OAuth2 password form, for the `Authorize` buttons of OpenAPI tools.")
        .form::<TokenForm>()
        .reply::<LoginResult>(200, "Tokens and the user.")
        .errors(&[401, 413, 429]),
        Op::post("/v1/auth/refresh", "refresh", AUTH, "Trade a refresh token")
            .public()
            .describe("Refresh tokens are single-use: each answer carries the next one.")
            .json::<Refresh>()
            .reply::<LoginResult>(200, "New tokens and the user.")
            .errors(&[400, 401, 422]),
        Op::post("/v1/auth/logout", "logout", AUTH, "Sign this session out")
            .no_content("The session's access and refresh tokens are revoked.")
            .errors(&[403]),
        Op::get("/v1/users/me", "getMe", USERS, "The caller")
            .reply::<User>(200, "The caller, with email."),
        Op::patch(
            "/v1/users/me",
            "updateMe",
            USERS,
            "Change the caller's profile",
        )
        .describe("Absent fields stay; `email: null` removes the email.")
        .json::<UpdateMe>()
        .reply::<User>(200, "The caller.")
        .errors(&[400, 409, 422]),
        Op::delete(
            "/v1/users/me",
            "deleteMe",
            USERS,
            "Delete the caller's account",
        )
        .describe("Its messages become tombstones, its memberships end.")
        .json::<DeleteAccount>()
        .no_content("The account is gone.")
        .errors(&[400, 403, 422]),
        Op::post(
            "/v1/users/me/password",
            "changePassword",
            USERS,
            "Change the password",
        )
        .json::<ChangePassword>()
        .no_content("Changed; every other session is signed out.")
        .errors(&[400, 422, 429]),
        Op::get("/v1/users", "searchUsers", USERS, "Find users")
            .query(
                "q",
                Type::String,
                "The start of a username or display name.",
            )
            .paged_by_name()
            .reply::<UserPage>(200, "Users, without email.")
            .errors(&[400]),
        Op::get("/v1/users/{id}", "getUser", USERS, "A user")
            .reply::<User>(200, "The user (email only for the caller).")
            .errors(&[404]),
        Op::get(
            "/v1/users/me/blocks",
            "listBlocks",
            USERS,
            "Users the caller blocks",
        )
        .paged()
        .reply::<BlockPage>(200, "Blocks, oldest first.")
        .errors(&[400]),
        Op::put(
            "/v1/users/me/blocks/{user_id}",
            "block",
            USERS,
            "Block a user",
        )
        .no_content("Blocked (also when already blocked).")
        .errors(&[404, 422]),
        Op::delete(
            "/v1/users/me/blocks/{user_id}",
            "unblock",
            USERS,
            "Unblock a user",
        )
        .no_content("Unblocked (also when not blocked).")
        .errors(&[404, 422]),
    ]
}

fn rooms() -> Vec<Op> {
    vec![
        Op::post("/v1/rooms", "createRoom", ROOMS, "Create a group room")
            .describe("The caller becomes `owner`.")
            .json::<CreateRoom>()
            .reply::<Room>(201, "The room.")
            .errors(&[400, 403, 404, 422]),
        Op::get("/v1/rooms", "listRooms", ROOMS, "The caller's rooms")
            .describe("Pinned first, then by last activity, newest first.")
            .query(
                "include_archived",
                Type::Boolean,
                "Also list archived rooms (default `false`).",
            )
            .paged()
            .reply::<RoomPage>(200, "Rooms, each with the caller's `membership`.")
            .errors(&[400]),
        Op::get(
            "/v1/rooms/public",
            "searchPublicRooms",
            ROOMS,
            "Find public rooms",
        )
        .query(
            "q",
            Type::String,
            "Text the room name starts with or contains.",
        )
        .paged()
        .reply::<PublicRoomPage>(200, "Public rooms.")
        .errors(&[400]),
        Op::get("/v1/rooms/{id}", "getRoom", ROOMS, "A room")
            .reply::<Room>(200, "The room.")
            .errors(&[404]),
        Op::patch("/v1/rooms/{id}", "updateRoom", ROOMS, "Change a room")
            .describe("Owner or admin. Absent fields stay; `topic: null` clears the topic.")
            .json::<UpdateRoom>()
            .reply::<Room>(200, "The room.")
            .errors(&[400, 403, 404, 422]),
        Op::delete("/v1/rooms/{id}", "deleteRoom", ROOMS, "Delete a room")
            .describe("Owner only; the members get `room.deleted`.")
            .no_content("Deleted.")
            .errors(&[403, 404, 422]),
        Op::get(
            "/v1/rooms/{id}/stats",
            "roomStats",
            ROOMS,
            "A room's figures",
        )
        .reply::<RoomStats>(200, "The figures.")
        .errors(&[404]),
        Op::post(
            "/v1/rooms/{id}/join",
            "joinRoom",
            ROOMS,
            "Join a public room",
        )
        .reply::<Member>(200, "The caller's membership (also when already a member).")
        .errors(&[403, 404, 429]),
        Op::post("/v1/rooms/{id}/leave", "leaveRoom", ROOMS, "Leave a room")
            .describe("A leaving owner hands over to the oldest admin, else the oldest member.")
            .no_content("Left.")
            .errors(&[403, 404, 422]),
        Op::put(
            "/v1/rooms/{id}/settings",
            "roomSettings",
            ROOMS,
            "The caller's settings",
        )
        .describe("Absent fields stay as they are.")
        .json::<RoomSettings>()
        .reply::<MembershipView>(200, "The caller's membership.")
        .errors(&[400, 403, 404, 422]),
        Op::post("/v1/dms", "openDirect", ROOMS, "Open a direct room")
            .describe("One per pair of users; its `name` is empty.")
            .json::<OpenDirect>()
            .reply::<Room>(201, "Created.")
            .reply::<Room>(200, "It existed.")
            .errors(&[400, 403, 404, 422]),
        Op::get(
            "/v1/rooms/{id}/members",
            "listMembers",
            MEMBERS,
            "A room's members",
        )
        .paged()
        .reply::<MemberPage>(200, "Members, oldest first.")
        .errors(&[400, 404]),
        Op::post(
            "/v1/rooms/{id}/members",
            "addMember",
            MEMBERS,
            "Add a member",
        )
        .describe("Owner or admin.")
        .json::<AddMember>()
        .reply::<Member>(201, "The new member.")
        .errors(&[400, 403, 404, 409, 422]),
        Op::patch(
            "/v1/rooms/{id}/members/{user_id}",
            "changeRole",
            MEMBERS,
            "Change a member's role",
        )
        .describe("Owner only; making another member `owner` hands the room over.")
        .json::<ChangeRole>()
        .reply::<Member>(200, "The member.")
        .errors(&[400, 403, 404, 422]),
        Op::delete(
            "/v1/rooms/{id}/members/{user_id}",
            "removeMember",
            MEMBERS,
            "Remove a member",
        )
        .describe("Owner or admin, of a member of lower role.")
        .query(
            "ban",
            Type::Boolean,
            "Also keep them from joining again (default `false`).",
        )
        .no_content("Removed.")
        .errors(&[400, 403, 404, 422]),
        Op::get("/v1/rooms/{id}/bans", "listBans", MEMBERS, "A room's bans")
            .paged()
            .reply::<BanPage>(200, "Bans, oldest first.")
            .errors(&[400, 403, 404]),
        Op::delete(
            "/v1/rooms/{id}/bans/{user_id}",
            "unban",
            MEMBERS,
            "Lift a ban",
        )
        .no_content("Lifted.")
        .errors(&[403, 404]),
    ]
}

fn messages() -> Vec<Op> {
    vec![
        Op::post(
            "/v1/rooms/{id}/messages",
            "sendMessage",
            MESSAGES,
            "Send a message",
        )
        .describe(
            "A repeated `client_id` from the same sender in the same room returns the \
                 original message with `200` and stores nothing.",
        )
        .json::<SendMessage>()
        .reply::<Message>(201, "Stored.")
        .reply::<Message>(200, "The original of a repeated `client_id`.")
        .errors(&[400, 403, 404, 413, 422, 429]),
        Op::get(
            "/v1/rooms/{id}/messages",
            "history",
            MESSAGES,
            "A room's history",
        )
        .describe(
            "Ascending `seq`. No cursor: the newest `limit`; `before=S`: the newest with \
                 seq < S; `after=S`: the oldest with seq > S.",
        )
        .query_group(
            "anchor",
            ObjectBuilder::new()
                .property("before", seq("Messages with a smaller seq."))
                .property("after", seq("Messages with a larger seq."))
                .max_properties(Some(1)),
            "Where the page is: `before` or `after` (not both), or neither for the newest.",
        )
        .limit()
        .reply::<HistoryPage>(200, "A page of messages.")
        .errors(&[400, 404]),
        Op::get(
            "/v1/rooms/{id}/messages/{message_id}",
            "getMessage",
            MESSAGES,
            "A message",
        )
        .reply::<Message>(200, "The message (a tombstone when deleted).")
        .errors(&[404]),
        Op::patch(
            "/v1/rooms/{id}/messages/{message_id}",
            "editMessage",
            MESSAGES,
            "Edit a message",
        )
        .describe("Author only; sets `edited_at`.")
        .json::<EditMessage>()
        .reply::<Message>(200, "The message.")
        .errors(&[400, 403, 404, 409, 422]),
        Op::delete(
            "/v1/rooms/{id}/messages/{message_id}",
            "deleteMessage",
            MESSAGES,
            "Delete a message",
        )
        .describe("The author, or an owner or admin; a tombstone stays in history.")
        .no_content("Deleted.")
        .errors(&[403, 404]),
        Op::get(
            "/v1/rooms/{id}/messages/{message_id}/thread",
            "thread",
            MESSAGES,
            "A thread's replies",
        )
        .query_with(
            "after",
            seq("Replies with a larger seq."),
            "Replies with a larger seq.",
        )
        .limit()
        .reply::<HistoryPage>(200, "A page of replies.")
        .errors(&[400, 404]),
        Op::put(
            "/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}",
            "react",
            MESSAGES,
            "React",
        )
        .no_content("Reacted (also when already).")
        .errors(&[403, 404, 409, 422]),
        Op::delete(
            "/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}",
            "unreact",
            MESSAGES,
            "Take a reaction back",
        )
        .no_content("Taken back (also when there was none).")
        .errors(&[403, 404, 409, 422]),
        Op::get("/v1/search", "searchMessages", MESSAGES, "Search messages")
            .describe("Messages in the caller's rooms with every word of `q`, newest first.")
            .query(
                "q",
                Type::String,
                "Plain text; nothing in it can cause an error.",
            )
            .query_with("room_id", uuid(), "Only this room.")
            .paged()
            .reply::<SearchPage>(200, "Messages found.")
            .errors(&[400, 404]),
    ]
}

fn signals() -> Vec<Op> {
    vec![
        Op::post(
            "/v1/rooms/{id}/read",
            "markRead",
            RECEIPTS,
            "Mark read up to a seq",
        )
        .describe("Clamped to `last_seq`; only moves forward; also moves `delivered`.")
        .json::<MarkSeq>()
        .reply::<ReadState>(200, "The caller's watermarks.")
        .errors(&[400, 403, 404, 422]),
        Op::post(
            "/v1/rooms/{id}/delivered",
            "markDelivered",
            RECEIPTS,
            "Mark delivered up to a seq",
        )
        .json::<MarkSeq>()
        .reply::<DeliveredState>(200, "The caller's delivered watermark.")
        .errors(&[400, 403, 404, 422]),
        Op::get(
            "/v1/rooms/{id}/receipts",
            "receipts",
            RECEIPTS,
            "A room's receipts",
        )
        .paged()
        .reply::<ReceiptPage>(200, "Each member's watermarks.")
        .errors(&[400, 404]),
        Op::get(
            "/v1/unread",
            "unread",
            RECEIPTS,
            "The caller's unread counts",
        )
        .reply::<UnreadSummary>(200, "Unread and mention counts per room."),
        Op::post(
            "/v1/rooms/{id}/typing",
            "typing",
            RECEIPTS,
            "Say the caller is typing",
        )
        .describe("Lasts 6 s unless renewed.")
        .json::<Typing>()
        .no_content("Sent to the room.")
        .errors(&[400, 403, 404, 422]),
        Op::get(
            "/v1/users/me/presence",
            "getMyPresence",
            PRESENCE,
            "The caller's presence",
        )
        .reply::<Presence>(200, "The caller's presence."),
        Op::put(
            "/v1/users/me/presence",
            "setPresence",
            PRESENCE,
            "Set online or away",
        )
        .json::<SetPresence>()
        .reply::<Presence>(200, "The caller's presence.")
        .errors(&[400, 422]),
        Op::get("/v1/presence", "presence", PRESENCE, "Users' presence")
            .query_list(
                "user_ids",
                uuid(),
                MAX_PRESENCE_QUERY,
                "Comma-separated user ids, up to 100.",
            )
            .reply::<PresenceList>(200, "Their presence.")
            .errors(&[400, 422]),
    ]
}

fn uploads() -> Vec<Op> {
    let file_form = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "file",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
        )
        .required("file")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into();
    vec![
        Op::post("/v1/uploads", "upload", UPLOADS, "Upload a file")
            .describe(
                "One multipart part, `file`. The cap counts the file's bytes while streaming; \
                 the bytes decide the type.",
            )
            .body("multipart/form-data", file_form)
            .reply::<UploadView>(201, "The upload.")
            .errors(&[400, 413, 415, 422]),
        Op::get(
            "/v1/uploads/types/allowed",
            "allowedUploadTypes",
            UPLOADS,
            "Accepted file types",
        )
        .reply::<AllowedTypes>(200, "The types."),
        Op::get(
            "/v1/uploads/{id}",
            "getUpload",
            UPLOADS,
            "An upload's metadata",
        )
        .reply::<UploadView>(200, "The upload.")
        .errors(&[404]),
        Op::delete(
            "/v1/uploads/{id}",
            "deleteUpload",
            UPLOADS,
            "Delete an upload",
        )
        .describe("Uploader only; messages that carried it keep `kind: file`.")
        .no_content("Deleted.")
        .errors(&[404]),
        Op::get(
            "/v1/uploads/{id}/content",
            "uploadContent",
            UPLOADS,
            "An upload's bytes",
        )
        .token_optional()
        .describe(
            "With a bearer token, or the `sig` and `expires` of a signed link instead. \
                 Visible to the uploader and to members of a room where a message carries it.",
        )
        .query_group(
            "signed_link",
            ObjectBuilder::new()
                .property(
                    "sig",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some("The link's signature.")),
                )
                .property(
                    "expires",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .description(Some("The link's expiry (Unix seconds).")),
                )
                .required("sig")
                .required("expires"),
            "The `sig` and `expires` of a signed link, both or neither (`400` with one).",
        )
        .header("Range", "`bytes=N-M`, `bytes=N-` or `bytes=-N`.")
        .respond(200, content_response("The whole file."))
        .respond(
            206,
            content_response("The range asked for, with `Content-Range`."),
        )
        .errors(&[400, 401, 404, 416]),
        Op::get(
            "/v1/uploads/{id}/link",
            "uploadLink",
            UPLOADS,
            "A signed link",
        )
        .describe("A URL for the content that needs no header, valid for a short time.")
        .reply::<UploadLink>(200, "The link.")
        .errors(&[404]),
    ]
}

fn live_and_operations() -> Vec<Op> {
    let text = |description: &str, media_type: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                media_type,
                Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
            )
            .build()
    };
    vec![
        Op::get("/v1/ws", "websocket", LIVE, "Open the WebSocket")
            .token_optional()
            .describe(
                "A WebSocket upgrade, not a JSON route: one connection carries every room of \
                 the user. Authenticate with `Authorization: Bearer`, a `ticket` from \
                 `POST /v1/ws/ticket`, the subprotocol `bearer, <token>`, or `token`. Frames \
                 are JSON text `{\"type\": ...}`: the server sends `ready`, `message.created`, \
                 `message.updated`, `message.deleted`, `reaction.updated`, `receipt`, \
                 `typing`, `presence`, `member.*`, `room.*`, `ack`, `synced`, `error`, \
                 `pong`; the client sends `message.send`, `sync`, `typing`, `read`, \
                 `delivered`, `ping`. The frame protocol is the WebSocket section of API.md \
                 (and of this project's README).",
            )
            .query("ticket", Type::String, "A single-use ticket (browsers).")
            .query(
                "token",
                Type::String,
                "An access token (for compatibility).",
            )
            .respond(
                101,
                Response::new("Switching Protocols: the WebSocket is open."),
            )
            // 400: a plain GET, without the upgrade headers.
            .errors(&[400, 401, 403]),
        Op::post("/v1/ws/ticket", "wsTicket", LIVE, "A WebSocket ticket")
            .describe("Single use, valid 30 s, on any node.")
            .reply::<WsTicket>(200, "The ticket."),
        Op::get("/health", "health", OPERATIONS, "Liveness")
            .public()
            .reply::<Health>(200, "The process answers."),
        Op::get("/ready", "ready", OPERATIONS, "Readiness")
            .public()
            .reply::<Ready>(200, "Storage answers.")
            .errors(&[503]),
        Op::get("/metrics", "metrics", OPERATIONS, "Prometheus metrics")
            .token_optional()
            .describe("Open, unless the server is configured with a metrics token.")
            .respond(200, text("Prometheus text format.", "text/plain"))
            .errors(&[401]),
        Op::get("/openapi.json", "openapi", OPERATIONS, "This document")
            .public()
            .respond(
                200,
                ResponseBuilder::new()
                    .description("The OpenAPI document.")
                    .content(
                        "application/json",
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
                    )
                    .build(),
            ),
        Op::get("/docs", "docs", OPERATIONS, "This document as a page")
            .public()
            .respond(
                200,
                text("An HTML page that needs no network.", "text/html"),
            ),
        Op::get("/", "webClient", OPERATIONS, "The web client")
            .public()
            .describe("Its files are embedded in the server and load nothing from elsewhere.")
            .respond(200, text("The web client's page.", "text/html"))
            .respond(304, not_modified()),
        Op::get(
            "/web/{asset}",
            "webAsset",
            OPERATIONS,
            "A file of the web client",
        )
        .public()
        .respond(200, web_asset())
        .respond(304, not_modified())
        .errors(&[404]),
    ]
}

/// A seq parameter: an integer, 0 or more.
fn seq(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .description(Some(description))
}

/// A file of the web client: a JavaScript module, the style sheet or the icon.
fn web_asset() -> Response {
    let string = || Content::new(Some(ObjectBuilder::new().schema_type(Type::String)));
    ResponseBuilder::new()
        .description("A script, style sheet or image of the web client.")
        .content("text/javascript", string())
        .content("text/css", string())
        .content("image/svg+xml", string())
        .build()
}

/// `304`: the `If-None-Match` ETag is the file's; the browser's copy is current.
fn not_modified() -> Response {
    ResponseBuilder::new()
        .description("The file is unchanged (`If-None-Match` named its `ETag`).")
        .build()
}

/// A response of an upload's bytes, with the headers the content route sets.
fn content_response(description: &str) -> Response {
    let header = |description: &str| {
        Header::builder()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(description))
            .build()
    };
    // Each accepted type, as the bytes decided it at upload.
    let bytes = || {
        Content::new(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
        ))
    };
    ALLOWED_TYPES
        .iter()
        .fold(ResponseBuilder::new().description(description), |r, t| {
            r.content(t.content_type, bytes())
        })
        .header(
            "Content-Type",
            header("The type stored with the upload (the body's real media type)."),
        )
        .header(
            "Content-Disposition",
            header("`inline` for safe image types, else `attachment`."),
        )
        .header("Content-Range", header("`bytes N-M/size`, on `206`."))
        .header("X-Content-Type-Options", header("`nosniff`."))
        .header("Accept-Ranges", header("`bytes`."))
        .build()
}
