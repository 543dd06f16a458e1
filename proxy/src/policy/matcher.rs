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
            for segment in glob.glob().split('/').skip(1) {
                if is_wild(segment) {
                    break;
                }
                node = if let Some(&child) = nodes[node].children.get(segment) {
                    child
                } else {
                    nodes.push(Node::default());
                    filed.push(Vec::new());
                    let child = nodes.len() - 1;
                    nodes[node].children.insert(segment.to_owned(), child);
                    child
                };
            }
            filed[node].push((index, glob));
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
        let mut segments = path.split('/').skip(1);
        loop {
            for shard in &node.shards {
                shard.set.matches_candidate_into(&candidate, &mut scratch);
                found.extend(scratch.iter().map(|&i| shard.indices[i]));
            }
            let Some(child) = segments.next().and_then(|s| node.children.get(s)) else {
                break;
            };
            node = &self.nodes[*child];
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
