//! The ports: traits a host implements to plug in its own storage, blob storage and bus.
//! All are `Send + Sync + Debug` and used as `Arc<dyn ...>`.

mod accounts;
mod blob;
mod moderation;
mod notifier;
mod outbox;
mod presence;
mod receipts;
mod store;
mod tickets;
mod uploads;

pub use accounts::AccountStore;
pub use blob::{BlobError, BlobKey, BlobStore, ByteStream};
pub use moderation::ModerationStore;
pub use notifier::{BusSignal, BusStream, Hint, HintKind, NodeId, Notifier};
pub use outbox::{BatchOutcome, EventSink, OutboxBatch, OutboxCounts, OutboxStore, SinkError};
pub use presence::{PresenceRecord, PresenceStore};
pub use receipts::{Receipt, ReceiptChange, ReceiptStore, UnreadCount};
pub use store::{
    constraint, AuthSession, MessageStore, RoomStore, Rotation, SessionStore, Store, UserStore,
};
pub use tickets::{TicketGrant, TicketStore};
pub use uploads::UploadStore;
