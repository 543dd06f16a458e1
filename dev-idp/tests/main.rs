//! The dev IdP's integration tests, one module per concern, in one test
//! binary (one link, a smaller `target/`); nextest runs each test in its own
//! process.

mod support;

mod authorization_code;
mod authorize_modes;
mod cli;
mod client_assertion;
mod client_credentials;
mod discovery;
mod graph;
mod implicit_flow;
mod key_rotation;
mod minted_tokens;
