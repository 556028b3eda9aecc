//! End-to-end tests against the fake server in `test_support::server`.

mod connection;
mod sessions;
