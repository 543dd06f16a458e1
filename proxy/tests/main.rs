//! The gateway's integration tests, one module per concern, in one test
//! binary (one link, a smaller `target/`); nextest runs each test in its own
//! process.

mod auth_common;

mod auth_keys;
mod auth_properties;
mod auth_tokens;
mod cli;
mod policy_contract;
mod properties;
mod reload_signal;
