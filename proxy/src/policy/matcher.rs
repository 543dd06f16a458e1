//! All routes' globs in as few `GlobSet`s as possible, searched in file order.
//!
//! One `GlobSet` answers "which globs match this path?" in one pass, with the
//! indices in ascending order, so "first declared route wins" costs nothing
//! extra. But a `GlobSet` compiles every glob with a wildcard into one regex
//! set, and `regex-automata` caps that at a fixed NFA size (about 9,000
//! globs like `/api/v1/x/*/items/**`). So the globs are cut, in file order,
//! into shards of at most [`WILDCARDS_PER_SHARD`] wildcard globs (literal
//! globs are a hash lookup and cost nothing there); a shard that still fails
//! to build is halved. A lookup searches the shards in order and stops at the
//! first shard that decides — a handful of searches for 10,000 routes, never
//! a scan of the routes.

use globset::{Candidate, Glob, GlobSet, GlobSetBuilder};

/// Wildcard globs per `GlobSet`: well under the regex size limit.
const WILDCARDS_PER_SHARD: usize = 2048;

#[derive(Debug, Clone, Default)]
pub(super) struct Matcher {
    shards: Vec<Shard>,
}

#[derive(Debug, Clone)]
struct Shard {
    set: GlobSet,
    /// Global index of the shard's first glob.
    offset: usize,
}

impl Matcher {
    /// Builds the matcher; global glob indices are positions in `globs`.
    pub(super) fn new(globs: Vec<Glob>) -> Result<Matcher, globset::Error> {
        let mut shards = Vec::new();
        let mut start = 0;
        let mut wildcards = 0;
        for (i, glob) in globs.iter().enumerate() {
            if glob.glob().contains(['*', '?', '[', '{']) {
                wildcards += 1;
            }
            if wildcards == WILDCARDS_PER_SHARD || i + 1 == globs.len() {
                build_shards(&globs[start..=i], start, &mut shards)?;
                start = i + 1;
                wildcards = 0;
            }
        }
        Ok(Matcher { shards })
    }

    /// Calls `decide` with the index of every glob matching `path`, in
    /// ascending order, until it returns `true`.
    pub(super) fn find(&self, path: &str, mut decide: impl FnMut(usize) -> bool) {
        let candidate = Candidate::new(path);
        let mut matches = Vec::new();
        for shard in &self.shards {
            shard.set.matches_candidate_into(&candidate, &mut matches);
            for &i in &matches {
                if decide(shard.offset + i) {
                    return;
                }
            }
        }
    }
}

/// Builds one shard from `globs`, or halves it until each half builds.
fn build_shards(
    globs: &[Glob],
    offset: usize,
    shards: &mut Vec<Shard>,
) -> Result<(), globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(glob.clone());
    }
    match builder.build() {
        Ok(set) => {
            shards.push(Shard { set, offset });
            Ok(())
        }
        Err(_) if globs.len() > 1 => {
            let half = globs.len() / 2;
            build_shards(&globs[..half], offset, shards)?;
            build_shards(&globs[half..], offset + half, shards)
        }
        Err(e) => Err(e),
    }
}
