//! Reference client of the yibao channel protocol, version 1 (`shared/spec/channel-protocol.md`): the
//! contract banks, payment companies and every other collection channel build against.
//!
//! - [`signing`]: the request and response strings to sign, HMAC-SHA256 signatures, nonces. Pure; the
//!   server uses it too.
//! - [`paths`]: every endpoint's PATH_AND_QUERY, user data percent-encoded, exactly as signed and sent.
//! - [`types`]: request and response bodies, field names as the protocol writes them, amounts in fen.
//! - [`client`] (feature `client`, on by default): [`ChannelClient`], which signs every request, verifies
//!   every response signature and decodes; and `send_raw` for conformance tests that need to send what a
//!   well-behaved channel never would.
//!
//! Depend with `default-features = false` for everything but the HTTP client (no reqwest).

pub mod paths;
pub mod signing;
pub mod types;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "client")]
pub use client::{
    ChannelClient, ChannelClientBuilder, ClientError, OpenedOrder, RawOptions, RawResponse,
    ResponseSignature, SentAuth,
};
pub use signing::ChannelSecret;
