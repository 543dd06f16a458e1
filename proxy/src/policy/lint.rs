//! Warnings about a policy that compiles but probably does not say what its
//! author meant. Only `authz-proxy check` asks for them (`--strict` makes
//! them errors); the gateway loads a policy with warnings as it is.
//!
//! What is checked, each warning at the place of the value it is about:
//! - **shadowed paths**: a path of a route that an earlier route always
//!   decides first, for some or all of its methods. "Covers" is decided on
//!   the text of the globs, soundly but not completely: an identical glob;
//!   the same number of segments, each equal or a whole-segment `*` over a
//!   segment that is not `**`; or an earlier `prefix/**` whose prefix covers
//!   the path's first segments, segment by segment, when the path has more.
//!   Other overlaps (`{a,b}`, `x*`, classes) are not reported.
//! - **`*` for `**`**: a path ending in a whole-segment `/*`, when another
//!   route's path (or an OpenAPI operation, with `check --openapi`) under
//!   the same literal prefix is deeper, which `*` never matches.
//! - **anonymous overlaps**: an anonymous route and a route that requires a
//!   token, for a common method, where one's path covers the other's.
//! - **misspelt roles and scopes**: two values of the same kind that differ
//!   only in case, or by an edit distance of at most 2 (and at most a third
//!   of the shorter name); the rarer one (or the later, on a tie) is flagged.
//!
//! Lookups go through the policy's own index, so a large policy is linted
//! without comparing every route with every other (the anonymous check
//! scans the routes once per anonymous path).

use std::collections::HashMap;

use serde_saphyr::Location;

use super::error::PolicyError;
use super::file::PolicyFile;
use super::route::Access;
use super::{MethodSet, Policy};

/// Where a route's values are written, kept from the parsed file because the
/// compiled [`Policy`] keeps only each route's line.
#[derive(Debug, Default)]
pub(super) struct RoutePlaces {
    paths: Vec<Place>,
    roles: Vec<(String, Place)>,
    scopes: Vec<(String, Place)>,
}

type Place = (usize, usize);

fn place(location: Location) -> Place {
    (
        usize::try_from(location.line()).unwrap_or(usize::MAX),
        usize::try_from(location.column()).unwrap_or(usize::MAX),
    )
}

/// The places of every route's values, in file order.
pub(super) fn places(file: &PolicyFile) -> Vec<RoutePlaces> {
    let Some(routes) = &file.routes else {
        return Vec::new();
    };
    routes
        .value
        .iter()
        .map(|route| {
            let route = &route.value;
            let mut places = RoutePlaces::default();
            if let Some(path) = &route.path {
                places.paths.push(place(path.referenced));
            }
            if let Some(paths) = &route.paths {
                places
                    .paths
                    .extend(paths.value.iter().map(|p| place(p.referenced)));
            }
            let values = |list: &Option<super::file::SpannedList>| -> Vec<(String, Place)> {
                list.iter()
                    .flat_map(|l| &l.value)
                    .map(|v| (v.value.clone(), place(v.referenced)))
                    .collect()
            };
            places.roles = values(&route.roles);
            places.scopes = values(&route.scopes);
            places
        })
        .collect()
}

/// One path of one route, with where it is written.
struct PathRef<'a> {
    route: usize,
    text: &'a str,
    place: Place,
}

/// All warnings, sorted by place. `places` must be of the file `policy` was
/// compiled from (so it has one entry per route). `operations` are the paths
/// of an OpenAPI document, for the `*`-for-`**` check.
pub(super) fn lint(
    policy: &Policy,
    places: &[RoutePlaces],
    file: &str,
    operations: &[String],
) -> Vec<PolicyError> {
    let mut paths = Vec::new();
    for (route, (compiled, places)) in policy.routes.iter().zip(places).enumerate() {
        for (text, place) in compiled.paths.iter().zip(&places.paths) {
            paths.push(PathRef {
                route,
                text,
                place: *place,
            });
        }
    }
    let mut warnings = Vec::new();
    let mut warn = |place: Place, message: String| {
        warnings.push(PolicyError {
            file: file.to_owned(),
            line: place.0,
            column: place.1,
            message,
        });
    };
    shadowed(policy, &paths, &mut warn);
    star_for_double_star(policy, &paths, operations, &mut warn);
    anonymous_overlaps(policy, &paths, &mut warn);
    misspellings(places, "role", |p| &p.roles, &mut warn);
    misspellings(places, "scope", |p| &p.scopes, &mut warn);
    warnings.sort_by_key(|w| (w.line, w.column));
    warnings
}

/// The segments after the leading `/`.
fn segments(path: &str) -> Vec<&str> {
    path.split('/').skip(1).collect()
}

fn is_wild(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

fn segment_covers(glob: &str, path: &str) -> bool {
    glob == path || (glob == "*" && path != "**" && !path.is_empty())
}

/// Whether every path `path` matches is matched by `glob` (see the module
/// docs for what is recognised).
pub(super) fn covers(glob: &str, path: &str) -> bool {
    if glob == path {
        return true;
    }
    let (g, p) = (segments(glob), segments(path));
    if let Some((&"**", prefix)) = g.split_last() {
        return p.len() > prefix.len()
            && prefix.iter().zip(&p).all(|(g, p)| segment_covers(g, p))
            && p[prefix.len()..].iter().all(|s| !s.is_empty());
    }
    g.len() == p.len() && g.iter().zip(&p).all(|(g, p)| segment_covers(g, p))
}

/// A request path that every glob covering `path` matches: each wildcard
/// segment becomes one segment no glob's literal text can equal.
fn witness(path: &str) -> String {
    let mut out = String::new();
    for segment in segments(path) {
        out.push('/');
        out.push_str(if is_wild(segment) { "\u{0}" } else { segment });
    }
    if out.is_empty() { "/".to_owned() } else { out }
}

/// Routes (by index, ascending, each once) having a path that covers `path`
/// and matches its witness (a glob such as `/a/{b,c}` does not, and is
/// found only by identical text).
fn covering_routes(policy: &Policy, path: &str) -> Vec<usize> {
    let mut found: Vec<usize> = Vec::new();
    for glob in policy.matcher.matches(&witness(path)) {
        let route = policy.glob_routes[glob];
        if found.last() != Some(&route)
            && policy.routes[route].paths.iter().any(|g| covers(g, path))
        {
            found.push(route);
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

fn route_label(policy: &Policy, route: usize) -> String {
    let r = &policy.routes[route];
    format!("route `{}` (line {})", r.name, r.line)
}

fn shadowed(policy: &Policy, paths: &[PathRef<'_>], warn: &mut impl FnMut(Place, String)) {
    let mut identical: HashMap<&str, Vec<usize>> = HashMap::new();
    for p in paths {
        identical.entry(p.text).or_default().push(p.route);
    }
    for p in paths {
        let mut earlier: Vec<usize> = covering_routes(policy, p.text);
        earlier.extend(&identical[p.text]);
        earlier.retain(|&r| r < p.route);
        earlier.sort_unstable();
        earlier.dedup();
        let methods = policy.routes[p.route].methods;
        let mut lost = MethodSet::EMPTY;
        let mut first = None;
        for method in methods.iter() {
            if let Some(&by) = earlier
                .iter()
                .find(|&&r| policy.routes[r].methods.contains(method))
            {
                lost.insert(method);
                first = Some(first.map_or(by, |f: usize| f.min(by)));
            }
        }
        let Some(by) = first else { continue };
        let name = &policy.routes[p.route].name;
        let what = if lost == methods {
            format!("`{}` in route `{name}`", p.text)
        } else {
            format!("{} `{}` in route `{name}`", lost.to_allow_header(), p.text)
        };
        warn(
            p.place,
            format!(
                "{what} can never match: {} comes first and covers it",
                route_label(policy, by)
            ),
        );
    }
}

fn star_for_double_star(
    policy: &Policy,
    paths: &[PathRef<'_>],
    operations: &[String],
    warn: &mut impl FnMut(Place, String),
) {
    // Literal prefix → the deepest path under it, described.
    let mut deepest: HashMap<String, (usize, String)> = HashMap::new();
    let mut file = |text: &str, describe: &dyn Fn() -> String| {
        let segs = segments(text);
        let mut prefix = String::new();
        for segment in segs.iter().take(segs.len().saturating_sub(1)) {
            if is_wild(segment) && *segment != "*" {
                break;
            }
            prefix.push('/');
            prefix.push_str(segment);
            let depth = segs.len();
            let entry = deepest.entry(prefix.clone()).or_insert((0, String::new()));
            if depth > entry.0 {
                *entry = (depth, describe());
            }
        }
    };
    for p in paths {
        file(p.text, &|| {
            format!("`{}` of {}", p.text, route_label(policy, p.route))
        });
    }
    for op in operations {
        file(op, &|| format!("operation path `{op}`"));
    }
    for p in paths {
        let segs = segments(p.text);
        let Some((&"*", prefix)) = segs.split_last() else {
            continue;
        };
        let key: String = prefix.iter().map(|s| format!("/{s}")).collect();
        if let Some((depth, what)) = deepest.get(&key)
            && *depth > segs.len()
        {
            warn(
                p.place,
                format!(
                    "`{}` in route `{}` matches one segment only, but {what} is deeper; write `{key}/**` if that was meant",
                    p.text, policy.routes[p.route].name
                ),
            );
        }
    }
}

fn anonymous_overlaps(
    policy: &Policy,
    paths: &[PathRef<'_>],
    warn: &mut impl FnMut(Place, String),
) {
    let protected = |route: usize| !matches!(policy.routes[route].access, Access::Anonymous);
    // Paths by their first one and two segments: a path an anonymous glob
    // covers starts with that glob's literal segments.
    let mut by_one: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_two: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, p) in paths.iter().enumerate() {
        let segs = segments(p.text);
        by_one.entry(segs[0]).or_default().push(i);
        if let Some(second) = segs.get(1) {
            by_two.entry((segs[0], second)).or_default().push(i);
        }
    }
    let all: Vec<usize> = (0..paths.len()).collect();
    let empty = Vec::new();
    for a in paths.iter().filter(|p| !protected(p.route)) {
        let anon = &policy.routes[a.route];
        let common = |r: usize| {
            let methods = policy.routes[r].methods;
            anon.methods.iter().any(|m| methods.contains(m))
        };
        // Protected routes whose paths cover this one, then those it covers.
        let mut other = covering_routes(policy, a.text)
            .into_iter()
            .find(|&r| protected(r) && common(r))
            .map(|r| {
                let glob = policy.routes[r]
                    .paths
                    .iter()
                    .find(|g| covers(g, a.text))
                    .map_or("", String::as_str);
                (r, glob)
            });
        if other.is_none() {
            let segs = segments(a.text);
            let literal = |i: usize| segs.get(i).filter(|s| !is_wild(s));
            let candidates = match (literal(0), literal(1)) {
                (Some(first), Some(second)) => by_two.get(&(*first, *second)).unwrap_or(&empty),
                (Some(first), None) => by_one.get(first).unwrap_or(&empty),
                _ => &all,
            };
            other = candidates
                .iter()
                .map(|&i| &paths[i])
                .find(|p| protected(p.route) && common(p.route) && covers(a.text, p.text))
                .map(|p| (p.route, p.text));
        }
        if let Some((r, glob)) = other {
            warn(
                a.place,
                format!(
                    "anonymous route `{}` overlaps `{glob}` of {}, which requires a token",
                    anon.name,
                    route_label(policy, r)
                ),
            );
        }
    }
}

fn misspellings(
    places: &[RoutePlaces],
    kind: &str,
    values: impl Fn(&RoutePlaces) -> &Vec<(String, Place)>,
    warn: &mut impl FnMut(Place, String),
) {
    // Value → every place it is written, in file order.
    let mut seen: Vec<(&str, Vec<Place>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (value, place) in places.iter().flat_map(&values) {
        let i = *index.entry(value).or_insert_with(|| {
            seen.push((value, Vec::new()));
            seen.len() - 1
        });
        seen[i].1.push(*place);
    }
    for (value, at) in &seen {
        // The most used similar value that this one is rarer than (or as
        // common as, but later than).
        let likely = seen
            .iter()
            .filter(|(other, other_at)| {
                other != value
                    && (other_at.len(), std::cmp::Reverse(other_at[0]))
                        > (at.len(), std::cmp::Reverse(at[0]))
                    && similar(value, other)
            })
            .max_by_key(|(_, other_at)| other_at.len());
        if let Some((other, other_at)) = likely {
            for place in at {
                warn(
                    *place,
                    format!(
                        "{kind} `{value}` looks like a misspelling of `{other}` (line {})",
                        other_at[0].0
                    ),
                );
            }
        }
    }
}

fn similar(a: &str, b: &str) -> bool {
    if a.to_lowercase() == b.to_lowercase() {
        return true;
    }
    let shorter = a.chars().count().min(b.chars().count());
    let distance = edit_distance(a, b);
    distance <= 2 && distance * 3 <= shorter
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_decided_on_the_glob_text() {
        let cases = [
            ("/a", "/a", true),
            ("/a/*", "/a/b", true),
            ("/a/*", "/a/*", true),
            ("/a/*", "/a/**", false),
            ("/a/*", "/a/b/c", false),
            ("/a/**", "/a/b/c", true),
            ("/a/**", "/a/*/c/**", true),
            ("/a/**", "/a", false),
            ("/**", "/", false),
            ("/**", "/x", true),
            ("/*/b", "/a/b", true),
            ("/a/{b,c}", "/a/b", false),
        ];
        for (glob, path, expected) in cases {
            assert_eq!(covers(glob, path), expected, "{glob} over {path}");
        }
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("Admin", "Admn"), 1);
        assert_eq!(edit_distance("access_as_user", "acess_as_usr"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert!(similar("Admin", "admin"));
        assert!(!similar("Read", "Write"));
        assert!(!similar("ab", "ac"));
    }
}
