//! The todo backend's integration tests, one module per concern, in one test
//! binary (one link, a smaller `target/`); nextest runs each test in its own
//! process.

mod harness;

mod api;
mod openapi;
mod postgres_tls;
mod process;
mod ready;
mod server;
mod store;
mod two_instances;
