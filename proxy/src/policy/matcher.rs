//! All routes' globs, indexed so that a lookup touches only the globs that
//! could match: no scan of the routes, however many there are.
//!
//! - Globs without wildcards (`/todoitems`) go into one hash map, keyed by
//!   the path they match.
//! - Every other glob is filed in a trie under its leading literal segments
//!   (`/api/v1/*/items/**` under `api` → `v1`), and each trie node keeps its
//!   globs in `GlobSet`s. A lookup walks the path's segments down the trie
//!   and asks the `GlobSet` of each node it passes.
//!
//! - A glob whose segments after its literal ones are all whole-segment `*`s,
//!   perhaps ending in `**` (`/api/v1/*/items` is not one; `/docs/**` and
//!   `/todoitems/*` are), is matched without a regex: by counting the
//!   remaining segments. Building a `GlobSet` costs about 0.2 ms, which for
//!   10,000 such routes would be two seconds of start-up.
//!
//! A `GlobSet` compiles its wildcard globs into one regex set, which
//! `regex-automata` caps at a fixed NFA size (about 9,000 globs like
//! `/api/v1/x/*/items/**`), so a node with many globs keeps them in shards of
//! at most [`GLOBS_PER_SHARD`], and a shard that still fails is halved.
//!
//! Indices are positions in the list given to [`Matcher::new`], which is in
//! file order; [`Matcher::matches`] returns them ascending, so "first
//! declared route wins" is the first index that decides.

use std::collections::HashMap;

use globset::{Candidate, Glob, GlobSet, GlobSetBuilder};

/// Globs per `GlobSet`: well under the regex size limit.
const GLOBS_PER_SHARD: usize = 2048;

#[derive(Debug, Clone)]
pub(super) struct Matcher {
    /// Wildcard-free globs: matched path → glob indices, ascending.
    exact: HashMap<String, Vec<usize>>,
    /// The trie of wildcard globs; `nodes[0]` is the root (`/`).
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Next literal segment → node index.
    children: HashMap<String, usize>,
    /// The globs whose literal segments end here.
    shards: Vec<Shard>,
    /// Globs whose literal segments end here and whose other segments are
    /// only `*`s and a last `**`: (glob index, tail).
    tails: Vec<(usize, Tail)>,
}

/// What follows a glob's literal segments: `stars` whole-segment `*`s, then
/// `**` if `rest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tail {
    stars: usize,
    rest: bool,
}

impl Tail {
    /// The tail of `segments` (after the literal ones), if it is that simple.
    fn of(segments: &[&str]) -> Option<Tail> {
        let (rest, stars) = match segments.split_last() {
            Some((&"**", stars)) => (true, stars),
            _ => (false, segments),
        };
        stars.iter().all(|s| *s == "*").then_some(Tail {
            stars: stars.len(),
            rest,
        })
    }

    /// As globset matches the glob (`*` as `?*` without crossing `/`, a
    /// last `**` as `/` followed by anything): each `*` takes one non-empty
    /// segment; `**` needs at least one more segment, whatever it holds.
    fn matches(self, remaining: &[&str]) -> bool {
        let enough = if self.rest {
            remaining.len() > self.stars
        } else {
            remaining.len() == self.stars
        };
        enough && remaining[..self.stars].iter().all(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone)]
struct Shard {
    set: GlobSet,
    /// Index in `set` → glob index.
    indices: Vec<usize>,
}

/// Whether a glob (or one of its segments) has any glob syntax in it.
fn is_wild(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

impl Matcher {
    /// Indexes `globs`; their positions are the indices `matches` returns.
    pub(super) fn new(globs: Vec<Glob>) -> Result<Matcher, globset::Error> {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut nodes = vec![Node::default()];
        let mut filed: Vec<Vec<(usize, Glob)>> = vec![Vec::new()];
        for (index, glob) in globs.into_iter().enumerate() {
            if !is_wild(glob.glob()) {
                exact.entry(glob.glob().to_owned()).or_default().push(index);
                continue;
            }
            let mut node = 0;
            let segments: Vec<&str> = glob.glob().split('/').skip(1).collect();
            let mut literal = 0;
            for segment in &segments {
                if is_wild(segment) {
                    break;
                }
                literal += 1;
                node = if let Some(&child) = nodes[node].children.get(*segment) {
                    child
                } else {
                    nodes.push(Node::default());
                    filed.push(Vec::new());
                    let child = nodes.len() - 1;
                    nodes[node].children.insert((*segment).to_owned(), child);
                    child
                };
            }
            // Globs are compiled with a whole-segment `*` written as `?*`.
            let written: Vec<&str> = segments[literal..]
                .iter()
                .map(|s| if *s == "?*" { "*" } else { s })
                .collect();
            match Tail::of(&written) {
                Some(tail) => nodes[node].tails.push((index, tail)),
                None => filed[node].push((index, glob)),
            }
        }
        for (node, globs) in nodes.iter_mut().zip(filed) {
            for chunk in globs.chunks(GLOBS_PER_SHARD) {
                build_shards(chunk, &mut node.shards)?;
            }
        }
        Ok(Matcher { exact, nodes })
    }

    /// The indices of all globs matching `path`, ascending.
    pub(super) fn matches(&self, path: &str) -> Vec<usize> {
        let mut found = self.exact.get(path).cloned().unwrap_or_default();
        let candidate = Candidate::new(path);
        let mut scratch = Vec::new();
        let mut node = &self.nodes[0];
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let mut depth = 0;
        loop {
            for shard in &node.shards {
                shard.set.matches_candidate_into(&candidate, &mut scratch);
                found.extend(scratch.iter().map(|&i| shard.indices[i]));
            }
            for (index, tail) in &node.tails {
                if tail.matches(&segments[depth..]) {
                    found.push(*index);
                }
            }
            let Some(child) = segments.get(depth).and_then(|s| node.children.get(*s)) else {
                break;
            };
            node = &self.nodes[*child];
            depth += 1;
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// Builds one shard from `globs`, or halves it until each half builds.
fn build_shards(globs: &[(usize, Glob)], shards: &mut Vec<Shard>) -> Result<(), globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for (_, glob) in globs {
        builder.add(glob.clone());
    }
    match builder.build() {
        Ok(set) => {
            let indices = globs.iter().map(|(index, _)| *index).collect();
            shards.push(Shard { set, indices });
            Ok(())
        }
        Err(_) if globs.len() > 1 => {
            let (first, second) = globs.split_at(globs.len() / 2);
            build_shards(first, shards)?;
            build_shards(second, shards)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use globset::GlobBuilder;

    use super::*;

    /// The regex-free tails decide exactly as globset does.
    #[test]
    fn tails_match_exactly_what_globset_matches() {
        let globs = [
            "/**", "/*", "/a/*", "/a/**", "/a/*/*", "/a/*/**", "/a/b/*", "/*/**",
        ];
        let paths = [
            "/", "/a", "/b", "/a/b", "/a/b/c", "/a/b/c/d", "/a/", "/x/y", "/a/%20", "/a/b.c",
        ];
        for written in globs {
            let compiled: String = written
                .split('/')
                .map(|s| if s == "*" { "?*" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let glob = GlobBuilder::new(&compiled)
                .literal_separator(true)
                .backslash_escape(false)
                .build()
                .unwrap();
            let regex = glob.compile_matcher();
            let matcher = Matcher::new(vec![glob]).unwrap();
            assert!(
                matcher.nodes.iter().all(|n| n.shards.is_empty()),
                "{written}"
            );
            for path in paths {
                assert_eq!(
                    !matcher.matches(path).is_empty(),
                    regex.is_match(path),
                    "{written} on {path}"
                );
            }
        }
    }
}
