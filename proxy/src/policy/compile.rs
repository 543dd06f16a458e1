//! From the file format to a [`Policy`]: validate everything, then build the
//! one `GlobSet` that matches all routes.
//!
//! Compiling is pure — no IO, no clock, no environment — so that `check`,
//! `explain`, `test` and hot reload can all run it on any text. It never
//! stops at the first problem: every error in the file is collected, with
//! the line and column of the value it is about.

use std::collections::HashMap;

use serde_saphyr::{Location, Spanned};

use super::Policy;
use super::error::{PolicyError, PolicyErrors};
use super::file::{DefaultsFile, IdentityHeadersFile, PolicyFile, RouteFile, SpannedList};
use super::glob::compile_glob;
use super::headers::{IdentityHeaders, parse_header_name};
use super::matcher::Matcher;
use super::method::{MethodSet, parse_method};
use super::route::{Access, Conditions, Route};
use super::upstreams::compile_upstreams;
use crate::identity::PrincipalKind;

/// The only schema version there is.
const VERSION: u64 = 1;

/// Collects errors with their places (the policy's, and those of the other
/// files read with [`read_yaml`](super::read_yaml)).
pub(crate) struct Errors<'a> {
    file: &'a str,
    list: Vec<PolicyError>,
}

impl<'a> Errors<'a> {
    /// An empty list for the file named `file`.
    pub(crate) fn new(file: &'a str) -> Self {
        Errors {
            file,
            list: Vec::new(),
        }
    }

    pub(crate) fn at(&mut self, location: Location, message: String) {
        self.list.push(PolicyError {
            file: self.file.to_owned(),
            line: usize::try_from(location.line()).unwrap_or(usize::MAX),
            column: usize::try_from(location.column()).unwrap_or(usize::MAX),
            message,
        });
    }

    /// The policy file's directory: relative paths in it are resolved
    /// from there (empty for a bare file name: the working directory).
    pub(super) fn dir(&self) -> &std::path::Path {
        std::path::Path::new(self.file)
            .parent()
            .unwrap_or(std::path::Path::new(""))
    }

    /// For what is missing from the whole document.
    pub(crate) fn at_start(&mut self, message: String) {
        self.list.push(PolicyError {
            file: self.file.to_owned(),
            line: 1,
            column: 1,
            message,
        });
    }

    /// Every error, in file order (errors at one place in the order they
    /// were found), or `Ok` when there is none.
    pub(crate) fn into_result(mut self) -> Result<(), PolicyErrors> {
        if self.list.is_empty() {
            return Ok(());
        }
        self.list.sort_by_key(|e| (e.line, e.column));
        Err(PolicyErrors { errors: self.list })
    }
}

/// Validates and compiles a policy file as read, adding to the errors the
/// reading found (`file.rs`); fails if there are any.
pub(super) fn compile(file: PolicyFile, mut errors: Errors<'_>) -> Result<Policy, PolicyErrors> {
    let file_name = errors.file;
    match &file.version {
        None if file.unreadable.contains(&"version") => {}
        None => errors.at_start(format!("missing `version: {VERSION}`")),
        Some(v) if v.value != VERSION => errors.at(
            v.referenced,
            format!("unsupported version `{}`; expected {VERSION}", v.value),
        ),
        Some(_) => {}
    }

    let identity_headers = compile_identity_headers(file.identity_headers, &mut errors);
    let (upstreams, upstream_names) = compile_upstreams(file.upstreams, &mut errors);
    let defaults = compile_conditions(ConditionKeys::from_defaults(file.defaults), &mut errors);

    let mut routes = Vec::new();
    let mut all_globs = Vec::new();
    let mut glob_routes = Vec::new();
    match file.routes {
        None if file.unreadable.contains(&"routes") => {}
        None => errors.at_start("missing `routes`".to_owned()),
        Some(list) if list.value.is_empty() && !file.unreadable.contains(&"routes") => errors.at(
            list.referenced,
            "`routes` is empty; every request would get 404".to_owned(),
        ),
        Some(list) => {
            let mut names: HashMap<String, usize> = HashMap::new();
            let upstreams = Upstreams {
                names: &upstream_names,
                unreadable: file.unreadable.contains(&"upstreams"),
            };
            for route in list.value {
                let compiled = compile_route(route, &defaults, &mut names, &upstreams, &mut errors);
                let Some((compiled, globs)) = compiled else {
                    continue;
                };
                for glob in globs {
                    all_globs.push(glob);
                    glob_routes.push(routes.len());
                }
                routes.push(compiled);
            }
        }
    }

    errors.into_result()?;
    let matcher = Matcher::new(all_globs).map_err(|e| {
        // Every glob was built on its own above; a set can only fail on size.
        PolicyErrors::single(file_name, 0, 0, format!("cannot compile routes: {e}"))
    })?;
    Ok(Policy {
        routes,
        matcher,
        glob_routes,
        identity_headers,
        upstreams,
    })
}

/// The names routes may give in `upstream:`.
struct Upstreams<'a> {
    /// Name → index into the compiled upstreams.
    names: &'a HashMap<String, usize>,
    /// `upstreams:` was not a mapping (reported): no name can be judged.
    unreadable: bool,
}

/// One route; `None` when it has errors (which are recorded).
fn compile_route(
    spanned: Spanned<RouteFile>,
    defaults: &SetConditions,
    names: &mut HashMap<String, usize>,
    upstreams: &Upstreams<'_>,
    errors: &mut Errors<'_>,
) -> Option<(Route, Vec<globset::Glob>)> {
    let before = errors.list.len();
    let place = spanned.referenced;
    let line = usize::try_from(place.line()).unwrap_or(usize::MAX);
    let route = spanned.value;

    let name = match route.name {
        None => {
            errors.at(place, "route has no `name`".to_owned());
            String::new()
        }
        Some(name) if name.value.trim().is_empty() => {
            errors.at(name.referenced, "empty route name".to_owned());
            String::new()
        }
        Some(name) => {
            if let Some(first) = names.get(&name.value) {
                errors.at(
                    name.referenced,
                    format!(
                        "duplicate route name `{}` (first on line {first})",
                        name.value
                    ),
                );
            } else {
                names.insert(name.value.clone(), line);
            }
            name.value
        }
    };
    let label = if name.is_empty() {
        "route".to_owned()
    } else {
        format!("route `{name}`")
    };

    let written_paths: Vec<Spanned<String>> = match (route.path, route.paths) {
        (Some(_), Some(paths)) => {
            errors.at(
                paths.referenced,
                "`path` and `paths` cannot both be given".to_owned(),
            );
            Vec::new()
        }
        (None, None) => {
            errors.at(place, format!("{label} has no `path` or `paths`"));
            Vec::new()
        }
        (Some(path), None) => vec![path],
        (None, Some(paths)) => {
            if paths.value.is_empty() {
                errors.at(paths.referenced, "`paths` is empty".to_owned());
            }
            paths.value
        }
    };
    let mut globs = Vec::new();
    let mut paths = Vec::new();
    for path in written_paths {
        match compile_glob(&path.value) {
            Ok(glob) => globs.push(glob),
            Err(message) => errors.at(path.referenced, message),
        }
        paths.push(path.value);
    }

    let methods = match route.methods {
        None => {
            errors.at(place, format!("{label} has no `methods`"));
            MethodSet::EMPTY
        }
        Some(list) => compile_methods(list, errors),
    };

    let roles = route.roles.map(|list| compile_names(list, "role", errors));
    let scopes = route
        .scopes
        .map(|list| compile_names(list, "scope", errors));
    let forward_authorization = route.forward_authorization;
    let keys = ConditionKeys {
        apps: route.apps,
        tenants: route.tenants,
        callers: route.callers,
        guests: route.guests,
        groups: route.groups,
        auth_context: route.auth_context,
    };
    let set_here = keys.any_set();
    let shadow = match &route.enforce {
        None => false,
        Some(e) if e.value == "shadow" => true,
        Some(e) if e.value == "deny" => false,
        Some(e) => {
            errors.at(
                e.referenced,
                format!(
                    "unknown `enforce` value `{}`; expected `deny` or `shadow`",
                    e.value
                ),
            );
            false
        }
    };
    let mut conditions = compile_conditions(keys, errors).over(defaults);
    let access = match route.allow {
        Some(allow) if allow.value == "anonymous" => {
            if roles.is_some() || scopes.is_some() || set_here || route.enforce.is_some() {
                errors.at(
                    allow.referenced,
                    "`allow: anonymous` cannot be combined with `roles`, `scopes`, `apps`, `tenants`, `callers`, `guests`, `groups`, `auth_context` or `enforce`".to_owned(),
                );
            }
            // `defaults:` are about token routes; an anonymous one has no caller.
            conditions = Conditions::default();
            if let Some(forward) = &forward_authorization
                && forward.value
            {
                errors.at(
                    forward.referenced,
                    "`forward_authorization` cannot be used with `allow: anonymous`".to_owned(),
                );
            }
            Access::Anonymous
        }
        Some(allow) if allow.value != "authenticated" => {
            errors.at(
                allow.referenced,
                format!(
                    "unknown `allow` value `{}`; expected `anonymous` or `authenticated`",
                    allow.value
                ),
            );
            Access::Anonymous
        }
        _ => Access::Token {
            roles: roles.unwrap_or_default(),
            scopes: scopes.unwrap_or_default(),
        },
    };

    let upstream = route.upstream.and_then(|name| {
        let found = upstreams.names.get(&name.value).copied();
        if found.is_none() && !upstreams.unreadable {
            let mut declared: Vec<&str> = upstreams.names.keys().map(String::as_str).collect();
            declared.sort_unstable();
            let declared = if declared.is_empty() {
                "no `upstreams:` are declared".to_owned()
            } else {
                format!("declared: {}", declared.join(", "))
            };
            errors.at(
                name.referenced,
                format!("unknown upstream `{}` ({declared})", name.value),
            );
        }
        found
    });
    let max_body_bytes = route.max_body_bytes.map(|limit| limit.value);
    let audiences = route.audiences.map(|list| {
        if matches!(access, Access::Anonymous) {
            errors.at(
                list.referenced,
                "`audiences` cannot be used with `allow: anonymous` (no token is read)".to_owned(),
            );
        }
        compile_audiences(list, errors)
    });

    if errors.list.len() != before {
        return None;
    }
    let route = Route {
        name,
        line,
        access,
        forward_authorization: forward_authorization.is_some_and(|f| f.value),
        methods,
        paths,
        extra: route.extra.is_some_and(|e| e.value),
        upstream,
        max_body_bytes,
        audiences,
        conditions,
        shadow,
        checked: Vec::new(),
    }
    .with_checked();
    Some((route, globs))
}

/// The condition keys of a route or of `defaults:`, as written.
struct ConditionKeys {
    apps: Option<SpannedList>,
    tenants: Option<SpannedList>,
    callers: Option<SpannedList>,
    guests: Option<Spanned<String>>,
    groups: Option<SpannedList>,
    auth_context: Option<SpannedList>,
}

impl ConditionKeys {
    fn from_defaults(file: Option<DefaultsFile>) -> ConditionKeys {
        let file = file.unwrap_or(DefaultsFile {
            apps: None,
            tenants: None,
            callers: None,
            guests: None,
            groups: None,
            auth_context: None,
        });
        ConditionKeys {
            apps: file.apps,
            tenants: file.tenants,
            callers: file.callers,
            guests: file.guests,
            groups: file.groups,
            auth_context: file.auth_context,
        }
    }

    fn any_set(&self) -> bool {
        self.apps.is_some()
            || self.tenants.is_some()
            || self.callers.is_some()
            || self.guests.is_some()
            || self.groups.is_some()
            || self.auth_context.is_some()
    }
}

/// Conditions as set in one place: `None` where the key is absent, so a
/// route's own key can override `defaults:`.
#[derive(Debug, Default)]
struct SetConditions {
    apps: Option<Vec<String>>,
    tenants: Option<Vec<String>>,
    /// `Some(None)`: `callers` lists both kinds, which admits either.
    callers: Option<Option<PrincipalKind>>,
    deny_guests: Option<bool>,
    groups: Option<Vec<String>>,
    auth_contexts: Option<Vec<String>>,
}

impl SetConditions {
    /// These conditions, each key not set here taken from `defaults`.
    fn over(self, defaults: &SetConditions) -> Conditions {
        Conditions {
            apps: self
                .apps
                .or_else(|| defaults.apps.clone())
                .unwrap_or_default(),
            tenants: self
                .tenants
                .or_else(|| defaults.tenants.clone())
                .unwrap_or_default(),
            callers: self.callers.or(defaults.callers).flatten(),
            deny_guests: self.deny_guests.or(defaults.deny_guests).unwrap_or(false),
            groups: self
                .groups
                .or_else(|| defaults.groups.clone())
                .unwrap_or_default(),
            auth_contexts: self
                .auth_contexts
                .or_else(|| defaults.auth_contexts.clone())
                .unwrap_or_default(),
        }
    }
}

fn compile_conditions(keys: ConditionKeys, errors: &mut Errors<'_>) -> SetConditions {
    SetConditions {
        apps: keys.apps.map(|list| {
            compile_guids(
                list,
                "app",
                "a client id (Entra admin center: App registrations → the client app → Application (client) ID)",
                errors,
            )
        }),
        tenants: keys.tenants.map(|list| {
            compile_guids(
                list,
                "tenant",
                "a tenant id (Entra admin center: Overview → Tenant ID)",
                errors,
            )
        }),
        callers: keys.callers.map(|list| compile_callers(list, errors)),
        deny_guests: keys.guests.map(|g| match g.value.as_str() {
            "allow" => false,
            "deny" => true,
            other => {
                errors.at(
                    g.referenced,
                    format!("unknown `guests` value `{other}`; expected `allow` or `deny`"),
                );
                false
            }
        }),
        groups: keys.groups.map(|list| {
            compile_guids(
                list,
                "group",
                "a group object id (Entra admin center: Groups → All groups → the group → Object ID)",
                errors,
            )
        }),
        auth_contexts: keys
            .auth_context
            .map(|list| compile_auth_contexts(list, errors)),
    }
}

/// `auth_context`: Conditional Access authentication context ids, `c1` to
/// `c99` (the only ids Entra has), exactly as `acrs` spells them.
fn compile_auth_contexts(list: SpannedList, errors: &mut Errors<'_>) -> Vec<String> {
    if list.value.is_empty() {
        errors.at(
            list.referenced,
            "`auth_context` is empty; omit it to need no authentication context".to_owned(),
        );
    }
    let mut ids: Vec<String> = Vec::new();
    for written in list.value {
        let id = written.value;
        if !is_auth_context_id(&id) {
            errors.at(
                written.referenced,
                format!(
                    "authentication context `{id}` is not an id from c1 to c99 (Entra admin center: Conditional Access → Authentication context)"
                ),
            );
        } else if ids.contains(&id) {
            errors.at(
                written.referenced,
                format!("duplicate authentication context `{id}`"),
            );
        } else {
            ids.push(id);
        }
    }
    ids
}

/// `c1` … `c99`: a `c` and a number from 1 to 99 without a leading zero.
fn is_auth_context_id(id: &str) -> bool {
    id.strip_prefix('c').is_some_and(|n| {
        !n.starts_with('0') && (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Client, tenant or group object ids: GUIDs, compared case-insensitively
/// (kept lowercase).
fn compile_guids(
    list: SpannedList,
    kind: &str,
    what: &str,
    errors: &mut Errors<'_>,
) -> Vec<String> {
    if list.value.is_empty() {
        errors.at(
            list.referenced,
            format!("`{kind}s` is empty; omit it to admit any {kind}"),
        );
    }
    let mut ids: Vec<String> = Vec::new();
    for written in list.value {
        let id = written.value.to_ascii_lowercase();
        if !is_guid(&id) {
            errors.at(
                written.referenced,
                format!("{kind} `{}` is not {what}", written.value),
            );
        } else if ids.contains(&id) {
            errors.at(
                written.referenced,
                format!("duplicate {kind} `{}`", written.value),
            );
        } else {
            ids.push(id);
        }
    }
    ids
}

/// `callers: [user]`, `[app]` or both (which admits either).
fn compile_callers(list: SpannedList, errors: &mut Errors<'_>) -> Option<PrincipalKind> {
    if list.value.is_empty() {
        errors.at(
            list.referenced,
            "`callers` is empty; omit it to admit users and apps".to_owned(),
        );
    }
    let mut kinds: Vec<PrincipalKind> = Vec::new();
    for written in list.value {
        let kind = match written.value.as_str() {
            "user" => PrincipalKind::User,
            "app" => PrincipalKind::App,
            other => {
                errors.at(
                    written.referenced,
                    format!("unknown caller `{other}`; expected `user` or `app`"),
                );
                continue;
            }
        };
        if kinds.contains(&kind) {
            errors.at(
                written.referenced,
                format!("duplicate caller `{}`", written.value),
            );
        } else {
            kinds.push(kind);
        }
    }
    match kinds.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// `8-4-4-4-12` hexadecimal digits, as Entra writes object ids.
fn is_guid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn compile_methods(list: SpannedList, errors: &mut Errors<'_>) -> MethodSet {
    if list.value.is_empty() {
        errors.at(list.referenced, "`methods` is empty".to_owned());
    }
    let mut set = MethodSet::EMPTY;
    for written in list.value {
        match parse_method(&written.value) {
            Ok(method) if set.contains(&method) => errors.at(
                written.referenced,
                format!("duplicate method `{}`", written.value),
            ),
            Ok(method) => {
                set.insert(&method);
            }
            Err(message) => errors.at(written.referenced, message),
        }
    }
    set
}

/// `audiences:`: `aud` values as Entra writes them (an application ID URI
/// such as `api://reports`, or a client id), compared exactly.
fn compile_audiences(list: SpannedList, errors: &mut Errors<'_>) -> Vec<String> {
    if list.value.is_empty() {
        errors.at(
            list.referenced,
            "`audiences` is empty; omit it to accept the gateway's audiences".to_owned(),
        );
    }
    let mut audiences: Vec<String> = Vec::new();
    for written in list.value {
        let value = written.value;
        if value.trim().is_empty() {
            errors.at(written.referenced, "empty audience".to_owned());
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.at(
                written.referenced,
                format!("audience {value:?} contains whitespace"),
            );
        } else if audiences.contains(&value) {
            errors.at(written.referenced, format!("duplicate audience `{value}`"));
        } else {
            audiences.push(value);
        }
    }
    audiences
}

/// Role or scope names: non-empty, no whitespace (`scp` is split on spaces,
/// and Entra forbids spaces in role values), no duplicates.
fn compile_names(list: SpannedList, kind: &str, errors: &mut Errors<'_>) -> Vec<String> {
    if list.value.is_empty() {
        errors.at(
            list.referenced,
            format!("`{kind}s` is empty; omit it to admit any valid token"),
        );
    }
    let mut names: Vec<String> = Vec::new();
    for written in list.value {
        let value = written.value;
        if value.is_empty() {
            errors.at(written.referenced, format!("empty {kind} name"));
        } else if value.chars().any(char::is_whitespace) {
            errors.at(
                written.referenced,
                format!("{kind} `{value}` contains whitespace"),
            );
        } else if kind == "scope" && value.contains('/') {
            // `scp` holds `access_as_user`, never `api://<client id>/access_as_user`.
            let short = value.rsplit('/').next().unwrap_or_default();
            errors.at(
                written.referenced,
                format!("scope `{value}` never appears in tokens; write `{short}`"),
            );
        } else if names.contains(&value) {
            errors.at(written.referenced, format!("duplicate {kind} `{value}`"));
        } else {
            names.push(value);
        }
    }
    names
}

/// A header name as backends that fold separators see it.
fn fold(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '_' || c == '.' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn compile_identity_headers(
    file: Option<IdentityHeadersFile>,
    errors: &mut Errors<'_>,
) -> IdentityHeaders {
    let mut headers = IdentityHeaders::default();
    let Some(file) = file else {
        return headers;
    };
    let configured = [
        (file.user_id, &mut headers.user_id),
        (file.tenant, &mut headers.tenant),
        (file.roles, &mut headers.roles),
        (file.scopes, &mut headers.scopes),
        (file.name, &mut headers.name),
        (file.email, &mut headers.email),
        (file.kind, &mut headers.kind),
        (file.assertion, &mut headers.assertion),
    ];
    let mut written_at: Vec<(String, Location)> = Vec::new();
    for (written, slot) in configured {
        let Some(written) = written else { continue };
        match parse_header_name(&written.value) {
            Ok(name) => {
                *slot = name.clone();
                written_at.push((written.value, written.referenced));
            }
            Err(message) => errors.at(written.referenced, message),
        }
    }
    // Each field needs its own header, or one would overwrite the other —
    // also after a backend folds `_` and `.` into `-` (`X_User_Id`).
    let folded: Vec<String> = headers.all().iter().map(|h| fold(h.as_str())).collect();
    for (written, place) in written_at {
        let mine = fold(&written);
        if folded.iter().filter(|other| **other == mine).count() > 1 {
            errors.at(
                place,
                format!("header name `{written}` is used for two identity fields"),
            );
        }
    }
    headers
}
