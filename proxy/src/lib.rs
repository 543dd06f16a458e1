//! authz-proxy: an authorization gateway for APIs protected by Microsoft Entra ID.
//!
//! A request goes through a few named stages (see [`gateway`]): normalise
//! path → match route → authenticate (skipped for anonymous routes) →
//! authorize → rewrite headers → forward. `ARCHITECTURE.md` has the picture.

pub mod access;
pub mod assertion;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod decision;
pub mod docs;
pub mod error;
pub mod gateway;
pub mod graph;
pub mod headers;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod path;
pub mod policy;
pub mod reload;
pub mod request_id;
pub mod server;
pub mod stages;
pub mod status_page;
mod tcp;
pub mod tls;
pub mod upstream;
