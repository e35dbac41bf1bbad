//! Drain (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017),
//! as the drain3 project implements it, for the templates of one service.
//!
//! - A line (already masked and split, see `mask`) is routed by a fixed-depth prefix tree: first
//!   by its severity level and token count, then by its first `depth - 2` tokens. Tokens with
//!   digits, and tokens beyond `max_children` children of a node, go to the node's `<*>` child.
//! - In the leaf, the line joins the cluster whose template is most similar (the share of the
//!   template's tokens equal to the line's, ties broken by the most `<*>`), if that similarity
//!   reaches `sim_th`; the template then becomes `<*>` wherever it differs from the line.
//!   Otherwise the line starts a new cluster.
//! - At most `max_clusters` clusters are kept; making room forgets the least recently matched.
//!   As in drain3, a forgotten cluster's id stays in its leaf until the leaf next gets a new
//!   cluster, and tree nodes are never removed (they are bounded by the tree's shape).
//!
//! Templates are kept per severity level (the level is part of the tree's first layer), so an
//! error line never merges into an info template: a familiar sentence at a new level is a new
//! template.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::activity::Activity;
use crate::config::DrainParams;
use crate::mask::Line;

/// The wildcard token of templates and tree nodes.
pub const WILDCARD: &str = "<*>";

/// Names of the severity levels, by level number (see [`level_of`]).
pub const LEVEL_NAMES: [&str; 7] = [
    "UNSPECIFIED",
    "TRACE",
    "DEBUG",
    "INFO",
    "WARN",
    "ERROR",
    "FATAL",
];

/// The level of an OpenTelemetry severity number: 0 unspecified, 1 TRACE ... 6 FATAL.
pub fn level_of(severity: u8) -> u8 {
    match severity {
        0 => 0,
        _ => ((severity - 1) / 4 + 1).min(6),
    }
}

/// One node of the prefix tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Children by token.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub children: BTreeMap<String, Node>,
    /// Clusters of a leaf, most recently created first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<u64>,
}

/// One template and what the detector knows of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Stable id: a hash of the level and template text when the cluster was created.
    pub template_id: u64,
    /// Severity level of its lines.
    pub level: u8,
    /// The template's tokens.
    pub tokens: Vec<String>,
    /// When it was last matched, as a sequence number (for least-recently-used eviction).
    pub seen: u64,
    /// Counts and alerts.
    pub activity: Activity,
}

impl Cluster {
    /// The template as text, e.g. `payment <*> declined`.
    pub fn text(&self) -> String {
        self.tokens.join(" ")
    }

    /// The template id as text.
    pub fn id_text(&self) -> String {
        crate::id_text(self.template_id)
    }
}

/// The templates of one service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drain {
    /// First layer of the tree, by [`root_key`].
    roots: BTreeMap<u32, Node>,
    clusters: BTreeMap<u64, Cluster>,
    /// Cluster ids by `Cluster::seen`, least recently used first.
    recency: BTreeMap<u64, u64>,
    /// Template ids in use (to keep them unique within the service).
    template_ids: HashSet<u64>,
    next_id: u64,
    next_seen: u64,
}

/// The tree's first-layer key of a level and a token count.
fn root_key(level: u8, tokens: usize) -> u32 {
    (u32::from(level) << 16) | tokens.min(0xFFFF) as u32
}

/// FNV-1a, 64 bits: small and stable across builds and platforms.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// Share of the template's tokens equal to the line's, the template's wildcard count, and
/// whether the template already covers the line (every token equal or a wildcard).
fn similarity(template: &[String], line: &Line<'_>) -> (f64, usize, bool) {
    if template.is_empty() {
        return (1.0, 0, true);
    }
    let mut same = 0;
    let mut wildcards = 0;
    for (token, other) in template.iter().zip(line.tokens()) {
        if token == WILDCARD {
            wildcards += 1;
        } else if token == other {
            same += 1;
        }
    }
    let covers = same + wildcards == template.len();
    (same as f64 / template.len() as f64, wildcards, covers)
}

impl Drain {
    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// The cluster `id`.
    #[cfg(test)]
    pub fn get(&self, id: u64) -> Option<&Cluster> {
        self.clusters.get(&id)
    }

    /// The cluster `id`, to update its activity.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Cluster> {
        self.clusters.get_mut(&id)
    }

    /// Every cluster, by id.
    pub fn clusters(&self) -> impl Iterator<Item = (u64, &Cluster)> {
        self.clusters.iter().map(|(id, cluster)| (*id, cluster))
    }

    /// Adds one line of severity `level`: returns the id of the cluster it joined and whether
    /// that cluster is new. Clusters forgotten to make room are pushed onto `evicted`.
    pub fn add(
        &mut self,
        level: u8,
        line: &Line<'_>,
        params: &DrainParams,
        evicted: &mut Vec<(u64, Cluster)>,
    ) -> (u64, bool) {
        let key = root_key(level, line.len());
        if let Some((id, covers)) = self.search(key, line, params)
            && let Some(cluster) = self.clusters.get_mut(&id)
        {
            if !covers {
                for (token, other) in cluster.tokens.iter_mut().zip(line.tokens()) {
                    if token != other && token != WILDCARD {
                        WILDCARD.clone_into(token);
                    }
                }
            }
            self.recency.remove(&cluster.seen);
            cluster.seen = self.next_seen;
            self.recency.insert(self.next_seen, id);
            self.next_seen += 1;
            return (id, false);
        }
        self.shrink_to(params.max_clusters.saturating_sub(1), evicted);
        let id = self.next_id;
        self.next_id += 1;
        let tokens: Vec<String> = line.tokens().map(str::to_owned).collect();
        let level_name = LEVEL_NAMES[usize::from(level.min(6))];
        let text = tokens.join(" ");
        let mut template_id = fnv1a(&[level_name.as_bytes(), b" ", text.as_bytes()]);
        // Two clusters may start from the same text (a template that merged into another's
        // first line): keep ids unique within the service.
        let mut salt: u32 = 0;
        while self.template_ids.contains(&template_id) {
            salt += 1;
            template_id = fnv1a(&[
                level_name.as_bytes(),
                b" ",
                text.as_bytes(),
                &salt.to_le_bytes(),
            ]);
        }
        self.template_ids.insert(template_id);
        self.insert_in_tree(key, &tokens, id, params);
        self.recency.insert(self.next_seen, id);
        self.clusters.insert(
            id,
            Cluster {
                template_id,
                level,
                tokens,
                seen: self.next_seen,
                activity: Activity::default(),
            },
        );
        self.next_seen += 1;
        (id, true)
    }

    /// Forgets the least recently used clusters until at most `max` remain.
    pub fn shrink_to(&mut self, max: usize, evicted: &mut Vec<(u64, Cluster)>) {
        while self.clusters.len() > max {
            let Some((_, id)) = self.recency.pop_first() else {
                break;
            };
            if let Some(cluster) = self.clusters.remove(&id) {
                self.template_ids.remove(&cluster.template_id);
                evicted.push((id, cluster));
            }
        }
    }

    /// drain3's `tree_search`: the best cluster for the line, if similar enough, and whether
    /// its template already covers the line.
    fn search(&self, key: u32, line: &Line<'_>, params: &DrainParams) -> Option<(u64, bool)> {
        let mut node = self.roots.get(&key)?;
        let count = line.len();
        if count == 0 {
            return node
                .clusters
                .first()
                .copied()
                .filter(|id| self.clusters.contains_key(id))
                .map(|id| (id, true));
        }
        for (depth, token) in (1..).zip(line.tokens()) {
            if depth >= params.prefix_depth || depth == count {
                break;
            }
            node = node
                .children
                .get(token)
                .or_else(|| node.children.get(WILDCARD))?;
        }
        let mut best: Option<(u64, f64, usize, bool)> = None;
        for id in &node.clusters {
            let Some(cluster) = self.clusters.get(id) else {
                continue;
            };
            let (similarity, wildcards, covers) = similarity(&cluster.tokens, line);
            let better = match best {
                None => true,
                Some((_, best_similarity, best_wildcards, _)) => {
                    similarity > best_similarity
                        || (similarity == best_similarity && wildcards > best_wildcards)
                }
            };
            if better {
                best = Some((*id, similarity, wildcards, covers));
            }
        }
        best.filter(|(_, similarity, _, _)| *similarity >= params.sim_th)
            .map(|(id, _, _, covers)| (id, covers))
    }

    /// drain3's `add_seq_to_prefix_tree`.
    fn insert_in_tree(&mut self, key: u32, tokens: &[String], id: u64, params: &DrainParams) {
        let clusters = &self.clusters;
        let mut node = self.roots.entry(key).or_default();
        if tokens.is_empty() {
            node.clusters = vec![id];
            return;
        }
        let count = tokens.len();
        for (depth, token) in (1..).zip(tokens) {
            if depth >= params.prefix_depth || depth == count {
                // Stale ids go when the leaf gets a new cluster.
                node.clusters.retain(|old| clusters.contains_key(old));
                node.clusters.insert(0, id);
                return;
            }
            let children = node.children.len();
            let child = if node.children.contains_key(token.as_str()) {
                token.as_str()
            } else if token.bytes().any(|byte| byte.is_ascii_digit()) {
                WILDCARD
            } else if node.children.contains_key(WILDCARD) {
                if children < params.max_children {
                    token.as_str()
                } else {
                    WILDCARD
                }
            } else if children + 1 < params.max_children {
                token.as_str()
            } else {
                WILDCARD
            };
            node = node.children.entry(child.to_owned()).or_default();
        }
    }

    /// The encoded form, for the snapshot.
    pub fn to_state(&self) -> DrainState {
        DrainState {
            next_id: self.next_id,
            next_seen: self.next_seen,
            roots: self.roots.clone(),
            clusters: self
                .clusters
                .iter()
                .map(|(id, cluster)| ClusterState {
                    id: *id,
                    template_id: cluster.template_id,
                    level: cluster.level,
                    seen: cluster.seen,
                    template: cluster.text(),
                    activity: cluster.activity.clone(),
                })
                .collect(),
        }
    }

    /// Back from the encoded form, checked.
    pub fn from_state(state: DrainState, burst_count: usize) -> Result<Self, String> {
        let mut drain = Drain {
            roots: state.roots,
            next_id: state.next_id,
            next_seen: state.next_seen,
            ..Drain::default()
        };
        for cluster in state.clusters {
            if cluster.level > 6 {
                return Err(format!(
                    "cluster {}: level {} > 6",
                    cluster.id, cluster.level
                ));
            }
            if cluster.id >= drain.next_id || cluster.seen >= drain.next_seen {
                return Err(format!(
                    "cluster {}: id or recency out of range",
                    cluster.id
                ));
            }
            let tokens: Vec<String> = if cluster.template.is_empty() {
                Vec::new()
            } else {
                cluster.template.split(' ').map(str::to_owned).collect()
            };
            if tokens.iter().any(String::is_empty) {
                return Err(format!("cluster {}: empty token in template", cluster.id));
            }
            let mut activity = cluster.activity;
            activity
                .check(burst_count)
                .map_err(|error| format!("cluster {}: {error}", cluster.id))?;
            if drain.recency.insert(cluster.seen, cluster.id).is_some()
                || !drain.template_ids.insert(cluster.template_id)
            {
                return Err(format!(
                    "cluster {}: recency or template id repeated",
                    cluster.id
                ));
            }
            let cluster_entry = Cluster {
                template_id: cluster.template_id,
                level: cluster.level,
                tokens,
                seen: cluster.seen,
                activity,
            };
            if drain.clusters.insert(cluster.id, cluster_entry).is_some() {
                return Err(format!("cluster {} repeated", cluster.id));
            }
        }
        Ok(drain)
    }
}

/// The encoded form of a [`Drain`]: the tree exactly as it is, and the clusters.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainState {
    next_id: u64,
    next_seen: u64,
    roots: BTreeMap<u32, Node>,
    clusters: Vec<ClusterState>,
}

/// The encoded form of a [`Cluster`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterState {
    id: u64,
    template_id: u64,
    level: u8,
    seen: u64,
    /// Tokens joined by single spaces (tokens never hold whitespace).
    template: String,
    activity: Activity,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::Tokenizer;

    fn params() -> DrainParams {
        DrainParams {
            sim_th: 0.4,
            prefix_depth: 2,
            max_children: 100,
            max_clusters: 1000,
        }
    }

    fn add(drain: &mut Drain, tokenizer: &mut Tokenizer, body: &str) -> (u64, bool) {
        let line = tokenizer.tokenize(body, 2048, 64);
        let mut evicted = Vec::new();
        let (id, created) = drain.add(3, &line, &params(), &mut evicted);
        drain.get_mut(id).unwrap().activity.record(1, 10);
        (id, created)
    }

    #[test]
    fn merges_lines_into_templates() {
        let mut drain = Drain::default();
        let mut tokenizer = Tokenizer::default();
        let (first, created) = add(&mut drain, &mut tokenizer, "user alice logged in");
        assert!(created);
        let (second, created) = add(&mut drain, &mut tokenizer, "user bob logged in");
        assert_eq!((second, created), (first, false));
        assert_eq!(drain.get(first).unwrap().text(), "user <*> logged in");
        // Different length: another template.
        let (other, created) = add(&mut drain, &mut tokenizer, "user bob logged out now");
        assert!(created && other != first);
        // Too different (1 of 4 tokens): another template.
        let (third, created) = add(&mut drain, &mut tokenizer, "user cache fully flushed");
        assert!(created && third != first);
        // The template id is kept across merges.
        let id = drain.get(first).unwrap().template_id;
        add(&mut drain, &mut tokenizer, "user carol logged off");
        assert_eq!(drain.get(first).unwrap().template_id, id);
        assert_eq!(drain.get(first).unwrap().text(), "user <*> logged <*>");
    }

    #[test]
    fn same_text_at_another_level_is_another_template() {
        let mut drain = Drain::default();
        let mut tokenizer = Tokenizer::default();
        let mut evicted = Vec::new();
        let line = tokenizer.tokenize("disk almost full", 2048, 64);
        let (info, _) = drain.add(3, &line, &params(), &mut evicted);
        let (error, created) = drain.add(5, &line, &params(), &mut evicted);
        assert!(created && info != error);
        assert_ne!(
            drain.get(info).unwrap().template_id,
            drain.get(error).unwrap().template_id
        );
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut drain = Drain::default();
        let mut tokenizer = Tokenizer::default();
        let small = DrainParams {
            max_clusters: 2,
            ..params()
        };
        let mut evicted = Vec::new();
        let mut add_small = |drain: &mut Drain, body: &str, evicted: &mut Vec<(u64, Cluster)>| {
            let line = tokenizer.tokenize(body, 2048, 64);
            drain.add(3, &line, &small, evicted)
        };
        let (a, _) = add_small(&mut drain, "alpha one", &mut evicted);
        let (b, _) = add_small(&mut drain, "beta two three", &mut evicted);
        add_small(&mut drain, "alpha one", &mut evicted);
        let (c, _) = add_small(&mut drain, "gamma four five six", &mut evicted);
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].1.text(), "beta two three");
        assert!(drain.get(a).is_some() && drain.get(b).is_none() && drain.get(c).is_some());
        // The forgotten template is new again.
        let (_, created) = add_small(&mut drain, "beta two three", &mut evicted);
        assert!(created);
    }

    #[test]
    fn numbers_route_to_the_wildcard_child_and_children_are_capped() {
        let mut drain = Drain::default();
        let mut tokenizer = Tokenizer::default();
        let capped = DrainParams {
            max_children: 3,
            ..params()
        };
        let mut evicted = Vec::new();
        for body in ["a x", "b x", "c x", "d x", "e4 x"] {
            let line = tokenizer.tokenize(body, 2048, 64);
            drain.add(3, &line, &capped, &mut evicted);
        }
        let node = &drain.roots[&root_key(3, 2)];
        let keys: Vec<&str> = node.children.keys().map(String::as_str).collect();
        assert_eq!(keys, ["<*>", "a", "b"]);
    }

    #[test]
    fn state_round_trips() {
        let mut drain = Drain::default();
        let mut tokenizer = Tokenizer::default();
        for body in [
            "user alice logged in",
            "user bob logged in",
            "disk 93% full",
            "",
        ] {
            add(&mut drain, &mut tokenizer, body);
        }
        let json = serde_json::to_string(&drain.to_state()).unwrap();
        let state: DrainState = serde_json::from_str(&json).unwrap();
        assert_eq!(Drain::from_state(state, 10).unwrap(), drain);
    }
}
