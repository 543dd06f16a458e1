//! The library's error type: configuration, key store, minting and serving.

use std::path::PathBuf;

use crate::ConfigError;

/// Everything that can go wrong in dev-idp outside an HTTP exchange (protocol
/// errors go back to clients as OAuth error responses instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file in the data directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// A file in the data directory has unexpected contents.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The crypto library refused to generate a key.
    #[error("rsa key generation failed")]
    KeyGeneration,
    /// A mint request names something the configuration does not have, or
    /// asks for a combination Entra would never issue.
    #[error("{0}")]
    Mint(String),
    /// Signing a token failed.
    #[error("signing failed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}
