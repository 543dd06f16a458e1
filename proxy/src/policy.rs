//! `policy.yaml`: which route a request belongs to, and what it requires.
//!
//! Two stages, as in ripgrep's configuration: the text is parsed into a
//! positioned YAML tree (`tree.rs`) and read into the types of `file.rs`
//! (the file format and nothing else; schema mistakes are recorded, not
//! fatal), then
//! `compile.rs` validates every value — reporting all problems at once, each
//! as `file:line:col: message` — and builds a [`Policy`]: all routes' globs
//! in one index (`matcher.rs`: a hash map for literal paths, `GlobSet`s in a
//! trie of literal segments for the rest), each route's methods as a bitset.
//! Deciding a request touches only the globs that could match, never a scan
//! of the routes.
//!
//! This module does no IO apart from [`Policy::load`] reading the file, keeps
//! no global state, and never sees a raw request path: callers match the
//! output of [`crate::path::normalize`]. Authentication and header rewriting
//! happen elsewhere; [`Route::authorize`] only compares an established
//! [`Identity`](crate::identity::Identity) with a route's requirements.
//!
//! Matching rules:
//! - routes are tried in file order; the first whose path **and** method
//!   match decides;
//! - `*` matches within one segment, `**` across segments, and globs are
//!   written in normalised form (checked at load time); a whole-segment `*`
//!   never matches an empty segment;
//! - a trailing slash is ignored: `/todoitems/` is decided like `/todoitems`
//!   (and forwarded as sent), because backends such as warp serve both alike
//!   and a `/todoitems/*` route must not decide `/todoitems/` under its rules;
//! - a path that some route matches, requested with a method no matching
//!   route admits, is a 405 with the union of their methods in `Allow`;
//!   a path no route matches is a 404. `HEAD` is not implied by `GET`.

mod compile;
mod error;
mod file;
mod glob;
mod headers;
mod lint;
mod matcher;
mod method;
mod route;
#[cfg(test)]
mod tests;
mod tree;
mod upstreams;

use std::path::{Path, PathBuf};

use http::Method;

use matcher::Matcher;

pub(crate) use compile::Errors;
pub use error::{PolicyError, PolicyErrors};
pub use headers::IdentityHeaders;
pub use method::{KNOWN_METHODS, MethodSet};
pub use route::{Access, Condition, Conditions, Denial, Overage, Route};
pub(crate) use tree::{Node, Reader};
pub use upstreams::UpstreamDecl;

/// A compiled, validated policy. Immutable and cheap to share (`Send + Sync`),
/// so a reload can swap a whole new one in atomically.
#[derive(Debug, Clone)]
pub struct Policy {
    /// In file order.
    routes: Vec<Route>,
    /// Every glob of every route, indexed in file order, so matches come
    /// back in file order.
    matcher: Matcher,
    /// Glob index → index into `routes`.
    glob_routes: Vec<usize>,
    identity_headers: IdentityHeaders,
    /// `upstreams:`, which routes refer to by index.
    upstreams: Vec<UpstreamDecl>,
}

/// The outcome of matching a request against the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch<'a> {
    /// The first route, in file order, whose path and method both match.
    Found(&'a Route),
    /// Some route's path matches, but none of those admits the method (405).
    MethodNotAllowed {
        /// For the `Allow` header: the union of the matching routes' methods,
        /// in a fixed order (`GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`).
        allow: String,
    },
    /// No route's path matches (404). Nothing unmatched is ever forwarded.
    NotFound,
}

impl Policy {
    /// Reads and compiles the policy at `path`; messages name the file as given.
    pub fn load(path: &Path) -> Result<Policy, PolicyErrors> {
        let file_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyErrors::single(&file_name, 0, 0, format!("cannot read policy: {e}"))
        })?;
        Policy::parse(&text, &file_name)
    }

    /// Parses and compiles policy text. Pure: no IO, so `check`, `explain`,
    /// `test` and hot reload can all use it.
    pub fn parse(text: &str, file_name: &str) -> Result<Policy, PolicyErrors> {
        let (parsed, errors) = read(text, file_name)?;
        compile::compile(parsed, errors)
    }

    /// Like [`Policy::parse`], and also the warnings of `authz-proxy check`
    /// (see `lint.rs`), sorted by place. `operation_paths` are the paths of
    /// the backend's OpenAPI document, if there is one, in policy glob form.
    pub fn parse_with_warnings(
        text: &str,
        file_name: &str,
        operation_paths: &[String],
    ) -> Result<(Policy, Vec<PolicyError>), PolicyErrors> {
        let (parsed, errors) = read(text, file_name)?;
        let places = lint::places(&parsed);
        let policy = compile::compile(parsed, errors)?;
        let warnings = lint::lint(&policy, &places, file_name, operation_paths);
        Ok((policy, warnings))
    }

    /// The route that decides a request. `normalized_path` must come from
    /// [`crate::path::normalize`]; globs are only written in that form. A
    /// trailing slash is not part of the match (see the module docs).
    pub fn route_for(&self, method: &Method, normalized_path: &str) -> RouteMatch<'_> {
        let key = match normalized_path.strip_suffix('/') {
            Some(without) if !without.is_empty() => without,
            _ => normalized_path,
        };
        let mut allowed = MethodSet::EMPTY;
        let mut previous = None;
        for glob in self.matcher.matches(key) {
            let index = self.glob_routes[glob];
            // A route with several matching globs is looked at once.
            if previous == Some(index) {
                continue;
            }
            previous = Some(index);
            let route = &self.routes[index];
            if route.methods.contains(method) {
                return RouteMatch::Found(route);
            }
            allowed = allowed.union(route.methods);
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::MethodNotAllowed {
                allow: allowed.to_allow_header(),
            }
        }
    }

    /// All routes, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The upstreams declared besides the default one, in name order.
    pub fn upstreams(&self) -> &[UpstreamDecl] {
        &self.upstreams
    }

    /// Every audience some route accepts with `audiences:`, sorted, each
    /// once: the authenticator accepts these besides the gateway's own, and
    /// the authorize stage holds each token to its route's list.
    pub fn route_audiences(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .routes
            .iter()
            .filter_map(|route| route.audiences.as_deref())
            .flatten()
            .cloned()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The files besides the policy itself that it was compiled from (the
    /// TLS settings of its upstreams), for hot reload to watch.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.upstreams
            .iter()
            .flat_map(|u| u.files.iter().map(PathBuf::as_path))
    }

    /// The header names the identity is forwarded in (validated at load).
    pub fn identity_headers(&self) -> &IdentityHeaders {
        &self.identity_headers
    }
}

/// Reads the text into the file format: a YAML syntax error is the only
/// error (nothing after it can be read); schema mistakes (unknown keys,
/// wrong types, repeated keys) are collected for `compile` to report with
/// its own, in file order.
fn read<'f>(
    text: &str,
    file_name: &'f str,
) -> Result<(file::PolicyFile, Errors<'f>), PolicyErrors> {
    read_yaml(text, file_name, file::read_policy)
}

/// Parses YAML text into a positioned tree (`tree.rs`) and reads it with
/// `read`, which records every schema mistake in the returned [`Errors`]
/// instead of stopping at the first. A YAML syntax error is the only
/// failure here: nothing after it can be read. The policy is read this
/// way, and so is `test`'s cases file.
pub(crate) fn read_yaml<'f, T>(
    text: &str,
    file_name: &'f str,
    read: impl FnOnce(&serde_saphyr::Spanned<Node>, &mut Reader<'_, '_, 'f>) -> T,
) -> Result<(T, Errors<'f>), PolicyErrors> {
    let tree = tree::parse(text).map_err(|e| syntax_error(&e, file_name))?;
    let mut errors = Errors::new(file_name);
    let mut reader = Reader {
        text,
        errors: &mut errors,
    };
    let value = read(&tree, &mut reader);
    Ok((value, errors))
}

/// A YAML error from serde-saphyr, as one `file:line:col: message`.
fn syntax_error(error: &serde_saphyr::Error, file_name: &str) -> PolicyErrors {
    use serde_saphyr::MessageFormatter as _;
    let error = error.without_snippet();
    let message = serde_saphyr::UserMessageFormatter.format_message(error);
    let (line, column) = error.location().map_or((0, 0), |l| {
        (
            usize::try_from(l.line()).unwrap_or(usize::MAX),
            usize::try_from(l.column()).unwrap_or(usize::MAX),
        )
    });
    PolicyErrors::single(file_name, line, column, message.into_owned())
}
