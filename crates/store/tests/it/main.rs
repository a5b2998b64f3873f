//! The store test suite, run against SQLite (a real file) and PostgreSQL
//! (the server named by `WARDEN_TEST_DATABASE_URL`; skipped with a printed
//! reason when it is not set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod approvals;
mod common;
mod oversight;
mod state;
mod suite;
mod tamper;
