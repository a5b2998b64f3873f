//! Integration tests of the decision engine. One binary, a module per feature.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../benches/support/synth.rs"]
mod synth;

mod common;
mod counters;
mod decimals;
mod equivalence;
mod properties;
mod recorded;
mod reference;
mod reload;
mod run_data;
mod semantics;
mod validation;
mod visibility;
