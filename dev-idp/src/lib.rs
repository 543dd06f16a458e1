//! dev-idp: a local stand-in for Microsoft Entra ID, so the gateway, Swagger
//! UI and the tests run with no Azure tenant.
//!
//! It serves Entra's URL layout under a configurable base URL — discovery
//! (v1, v2, `common`/`organizations`), JWKS, the authorization-code flow with
//! PKCE, client credentials and refresh tokens — and mints the same tokens from
//! the command line. It is a development tool: anyone who can reach it can
//! sign in as anyone. It never claims `login.microsoftonline.com` as issuer.
//!
//! Code map: [`config`] (YAML → [`Config`]), `keys` (persisted RSA keys,
//! rotation), `claims` (the claim set of an access token),
//! [`claims_request`] (the `claims` parameter: step-up `acrs`, client
//! capabilities `xms_cc`), [`mint`]
//! ([`MintRequest`]), [`Idp`] (all of it together), `sessions` (codes and
//! refresh tokens), `server` (the warp routes, [`run`], and the Microsoft
//! Graph stand-in for groups overage, [`GraphMode`]).

mod claims;
pub mod claims_request;
pub mod config;
mod error;
mod idp;
mod keys;
pub mod mint;
mod server;
mod sessions;

pub use claims_request::ClaimsRequest;
pub use config::{Config, ConfigError, ConfigProblem, TokenVersion};
pub use error::Error;
pub use idp::Idp;
pub use keys::client_cert::ClientCertificate;
pub use mint::MintRequest;
pub use server::graph::GraphMode;
pub use server::{NOT_FOR_PRODUCTION, run};
