//! The end-to-end tests, one module per concern, in one test binary: one link
//! instead of one per file (each ~85 MB), which keeps `target/` and CI's disk
//! small. nextest still runs every test in a process of its own.

mod attacks;
mod audiences;
mod backend_assertion;
mod browser;
mod compose;
mod connections;
mod decision_endpoint;
mod demo;
mod docs_through_gateway;
mod examples;
mod faults;
mod gateway_security;
mod groups;
mod identity_assertion;
mod ingress;
mod kubernetes;
mod limits;
mod operability;
mod policy_reload;
mod policy_tools;
mod readme_commands;
mod replicas;
mod sample_through_gateway;
mod step_up;
mod upstreams;
