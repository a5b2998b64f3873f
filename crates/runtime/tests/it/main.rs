//! The runtime's gates, below the server: a temporary SQLite store, the
//! support-refunds example pack, and one `check(proposal, expect)` helper.
//! Each gate (pause, quarantine, circuit, step order, run state, policy)
//! is tried on a new proposal and again at execution after an approval.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gates;
mod harness;
