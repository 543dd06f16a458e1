//! Token validation and the signing-key set (owned by the auth work).
