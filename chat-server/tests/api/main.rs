//! The API tested from outside: a real server on a random port, real HTTP and WebSocket.

mod support;

mod authz;
mod bad_input;
mod binary;
mod changes;
mod chat;
mod commands;
mod cors;
mod crash;
mod deletion;
mod events;
mod host_tokens;
mod idempotency;
mod limits;
mod moderation;
mod multinode;
mod observability;
mod openapi;
mod presence;
mod privacy;
mod receipts;
mod restart;
mod resume;
mod sequence;
mod sessions;
mod slow_consumer;
mod typing;
mod uploads;
mod web;
mod ws_fuzz;
mod ws_protocol;
