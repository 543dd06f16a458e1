//! Request path normalisation (owned by the policy work).
