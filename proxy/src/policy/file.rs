//! The file format of `policy.yaml`, read out of its YAML tree (`tree.rs`).
//!
//! These types are the boundary with the user's text and nothing else: every
//! value that a message may point at is wrapped in [`Spanned`] so that it
//! keeps its line and column, and every key is optional here so that the
//! compiler (`compile.rs`) can report all missing and invalid values at once.
//! Unknown keys are refused here, because a misspelt key (`role:` for
//! `roles:`) would otherwise silently open a route; like a value of the
//! wrong type or a repeated key, one is recorded and reading goes on, so it
//! never hides the file's other mistakes. A route or an upstream with a
//! value of the wrong type is left out of what is compiled (its other
//! values would only give misleading follow-up errors); an unknown key
//! leaves the rest of its mapping meaningful, so that one is compiled.
//! The order in which each `read_*` function asks for its keys is the
//! order the "expected one of" messages list them in.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::tree::{Node, Reader};

/// A list whose own position and whose items' positions are all kept.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// The whole document.
#[derive(Debug)]
pub(super) struct PolicyFile {
    pub version: Option<Spanned<u64>>,
    pub identity_headers: Option<IdentityHeadersFile>,
    pub upstreams: Option<Spanned<BTreeMap<String, Spanned<UpstreamFile>>>>,
    pub routes: Option<Spanned<Vec<Spanned<RouteFile>>>>,
    pub defaults: Option<DefaultsFile>,
    /// Top-level keys whose values had the wrong type (already reported):
    /// present, so never reported missing.
    pub unreadable: Vec<&'static str>,
}

/// `defaults:`; each key applies to every token route that does not set it.
#[derive(Debug)]
pub(super) struct DefaultsFile {
    pub apps: Option<SpannedList>,
    pub tenants: Option<SpannedList>,
    pub callers: Option<SpannedList>,
    pub guests: Option<Spanned<String>>,
    pub groups: Option<SpannedList>,
    pub auth_context: Option<SpannedList>,
}

/// `identity_headers:`; each key overrides one default header name.
#[derive(Debug)]
pub(super) struct IdentityHeadersFile {
    pub user_id: Option<Spanned<String>>,
    pub tenant: Option<Spanned<String>>,
    pub roles: Option<Spanned<String>>,
    pub scopes: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub email: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub assertion: Option<Spanned<String>>,
}

/// One entry of `upstreams:`, under its name.
#[derive(Debug)]
pub(super) struct UpstreamFile {
    pub url: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub strip_prefix: Option<Spanned<String>>,
    pub timeout_seconds: Option<Spanned<u64>>,
    pub ca: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub assertion_audience: Option<Spanned<String>>,
    /// A value had the wrong type (already reported): the name is declared,
    /// nothing else of it is checked.
    pub unreadable: bool,
}

/// One item of `routes:`.
#[derive(Debug)]
pub(super) struct RouteFile {
    pub name: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub paths: Option<SpannedList>,
    pub methods: Option<SpannedList>,
    pub allow: Option<Spanned<String>>,
    pub roles: Option<SpannedList>,
    pub scopes: Option<SpannedList>,
    pub forward_authorization: Option<Spanned<bool>>,
    pub extra: Option<Spanned<bool>>,
    pub upstream: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub audiences: Option<SpannedList>,
    pub apps: Option<SpannedList>,
    pub tenants: Option<SpannedList>,
    pub callers: Option<SpannedList>,
    pub guests: Option<Spanned<String>>,
    pub groups: Option<SpannedList>,
    pub auth_context: Option<SpannedList>,
    pub enforce: Option<Spanned<String>>,
}

/// Reads the whole document; every mistake is recorded in `r`.
pub(super) fn read_policy(root: &Spanned<Node>, r: &mut Reader<'_, '_, '_>) -> PolicyFile {
    let mut file = PolicyFile {
        version: None,
        identity_headers: None,
        upstreams: None,
        routes: None,
        defaults: None,
        unreadable: Vec::new(),
    };
    let Some(mut fields) = r.mapping(root) else {
        // Not a mapping: nothing else can be said about it.
        file.unreadable = vec!["version", "routes"];
        return file;
    };
    file.version = r.number(&mut fields, "version");
    file.identity_headers = fields
        .node("identity_headers")
        .and_then(|node| read_identity_headers(node, r));
    let upstreams = fields.node("upstreams");
    file.upstreams = upstreams.and_then(|node| {
        let names = r.mapping(node)?;
        let mut map = BTreeMap::new();
        for (name, _, value) in names.all() {
            map.insert(name.to_owned(), read_upstream(value, r));
        }
        Some(Spanned::new(map, node.referenced, node.defined))
    });
    if upstreams.is_some() && file.upstreams.is_none() {
        // Not a mapping (reported): routes naming an upstream get no second error.
        fields.mark_unreadable("upstreams");
    }
    if let Some(node) = fields.node("routes") {
        match &node.value {
            Node::Seq(items) => {
                let routes: Vec<_> = items
                    .iter()
                    .filter_map(|item| read_route(item, r))
                    .collect();
                if routes.len() != items.len() {
                    // Some were left out: the list is not what was written.
                    fields.mark_unreadable("routes");
                }
                file.routes = Some(Spanned::new(routes, node.referenced, node.defined));
            }
            _ => {
                r.errors.at(
                    node.referenced,
                    "`routes` must be a list of routes, each starting with `- name:`".to_owned(),
                );
                fields.mark_unreadable("routes");
            }
        }
    }
    file.defaults = fields
        .node("defaults")
        .and_then(|node| read_defaults(node, r));
    r.finish(&fields);
    file.unreadable = fields.unreadable;
    file
}

fn read_defaults(node: &Spanned<Node>, r: &mut Reader<'_, '_, '_>) -> Option<DefaultsFile> {
    let mut fields = r.mapping(node)?;
    let defaults = DefaultsFile {
        apps: r.list(&mut fields, "apps"),
        tenants: r.list(&mut fields, "tenants"),
        callers: r.list(&mut fields, "callers"),
        guests: r.string(&mut fields, "guests"),
        groups: r.list(&mut fields, "groups"),
        auth_context: r.list(&mut fields, "auth_context"),
    };
    r.finish(&fields);
    Some(defaults)
}

fn read_identity_headers(
    node: &Spanned<Node>,
    r: &mut Reader<'_, '_, '_>,
) -> Option<IdentityHeadersFile> {
    let mut fields = r.mapping(node)?;
    let headers = IdentityHeadersFile {
        user_id: r.string(&mut fields, "user_id"),
        tenant: r.string(&mut fields, "tenant"),
        roles: r.string(&mut fields, "roles"),
        scopes: r.string(&mut fields, "scopes"),
        name: r.string(&mut fields, "name"),
        email: r.string(&mut fields, "email"),
        kind: r.string(&mut fields, "type"),
        assertion: r.string(&mut fields, "assertion"),
    };
    r.finish(&fields);
    Some(headers)
}

/// One upstream; when a value in it has the wrong type, or it is not even
/// a mapping (reported), it is marked `unreadable`: its name is still
/// declared for the routes.
fn read_upstream(node: &Spanned<Node>, r: &mut Reader<'_, '_, '_>) -> Spanned<UpstreamFile> {
    let mut upstream = UpstreamFile {
        url: None,
        host: None,
        strip_prefix: None,
        timeout_seconds: None,
        ca: None,
        client_cert: None,
        client_key: None,
        assertion_audience: None,
        unreadable: true,
    };
    if let Some(mut fields) = r.mapping(node) {
        upstream.url = r.string(&mut fields, "url");
        upstream.host = r.string(&mut fields, "host");
        upstream.strip_prefix = r.string(&mut fields, "strip_prefix");
        upstream.timeout_seconds = r.number(&mut fields, "timeout_seconds");
        upstream.ca = r.string(&mut fields, "ca");
        upstream.client_cert = r.string(&mut fields, "client_cert");
        upstream.client_key = r.string(&mut fields, "client_key");
        upstream.assertion_audience = r.string(&mut fields, "assertion_audience");
        r.finish(&fields);
        upstream.unreadable = fields.is_broken();
    }
    Spanned::new(upstream, node.referenced, node.defined)
}

/// One route, or `None` when a value in it has the wrong type (reported).
fn read_route(node: &Spanned<Node>, r: &mut Reader<'_, '_, '_>) -> Option<Spanned<RouteFile>> {
    let mut fields = r.mapping(node)?;
    let route = RouteFile {
        name: r.string(&mut fields, "name"),
        path: r.string(&mut fields, "path"),
        paths: r.list(&mut fields, "paths"),
        methods: r.list(&mut fields, "methods"),
        allow: r.string(&mut fields, "allow"),
        roles: r.list(&mut fields, "roles"),
        scopes: r.list(&mut fields, "scopes"),
        forward_authorization: r.boolean(&mut fields, "forward_authorization"),
        extra: r.boolean(&mut fields, "extra"),
        upstream: r.string(&mut fields, "upstream"),
        max_body_bytes: r.number(&mut fields, "max_body_bytes"),
        audiences: r.list(&mut fields, "audiences"),
        apps: r.list(&mut fields, "apps"),
        tenants: r.list(&mut fields, "tenants"),
        callers: r.list(&mut fields, "callers"),
        guests: r.string(&mut fields, "guests"),
        groups: r.list(&mut fields, "groups"),
        auth_context: r.list(&mut fields, "auth_context"),
        enforce: r.string(&mut fields, "enforce"),
    };
    r.finish(&fields);
    if fields.is_broken() {
        return None;
    }
    Some(Spanned::new(route, fields.place, node.defined))
}
