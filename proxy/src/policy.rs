//! policy.yaml: parsing, compiling and matching (owned by the policy work).
