//! Tests of the `warden` binary, run as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod approvals;
mod audit;
mod browser;
mod common;
mod console;
mod counters;
mod decide;
mod drills;
mod erasure;
mod gateway;
mod inventory;
mod kill9;
mod mcp;
mod mcp_clients;
mod mcp_peers;
mod oversight;
mod oversight_paging;
mod postgres;
mod readiness;
mod replay;
mod run_data;
mod run_end;
mod safety;
mod schema;
mod serve;
mod slack;
mod slack_standin;
mod tables;
mod test_cmd;
mod token;
mod validate;
