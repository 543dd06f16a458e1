//! authz-proxy: an authorization gateway for APIs protected by Microsoft Entra ID.
//!
//! A request goes through a few named stages: normalise path → match route →
//! authenticate (skipped for public routes) → authorize → rewrite headers →
//! forward. See `ARCHITECTURE.md` for the picture.

pub mod auth;
pub mod identity;
pub mod path;
pub mod policy;
