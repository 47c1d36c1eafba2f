//! Cluster identity in the data directory: `<data dir>/<node>/identity.json`.
//!
//! The first start records which cluster this directory belongs to (its id),
//! this node's name and the initial voters with their addresses, or, for a
//! node started with `--join`, the member it joined through (and no voters:
//! it bootstraps nothing). Every later start compares: another
//! node name, another cluster id or a peer list that contradicts the recorded
//! voters is refused (exit 2, saying what differs), because running on would
//! let a member elect itself in a cluster of its own and diverge from the rest
//! (a split brain).
//!
//! **After the first start the stored configuration wins.** `PEERS` only
//! bootstraps a new cluster: a restarted node takes its voters from its log
//! and snapshot, and where they hold no configuration yet, from the voters
//! and addresses recorded here, never from `PEERS` again. So membership
//! changes never make a restart refuse: `PEERS` may stay what it was at the
//! first start, or name the current voters (the stored configuration's); any
//! other list is refused with both lists in the message. A joined node may be
//! restarted with `--join` again or with neither `--join` nor `PEERS`.
//!
//! A directory with data but no identity file (from before
//! this file existed) adopts the configuration it is started with, and so does
//! a node that has never stored a term, an entry or a snapshot (it cannot
//! have voted or acknowledged anything, so a corrected first configuration is
//! safe).
//!
//! **The cluster id** is `RAFT_CLUSTER_ID` when given; otherwise it is derived
//! from the initial voters: the first 16 bytes of SHA-256 over their sorted
//! names, in hex. Every member computes the same id from the same
//! configuration without any coordination, and it does not depend on the
//! cluster token, so rotating the token keeps the id. It is not a secret: it
//! catches a peer of another cluster (or a copied data directory) at the
//! stream handshake (`X-Raftkv-Cluster`, 403 on a mismatch), while the token
//! or mutual TLS keep out an attacker.
//!
//! The file is written atomically: a temporary file, fsync, rename, fsync of
//! the directory.

use crate::address_book::MemberAddress;
use crate::config::NodeConfig;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in a node's data directory.
pub const FILE_NAME: &str = "identity.json";

/// What the data directory records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster's id.
    pub cluster_id: String,
    /// This node's name.
    pub node: String,
    /// The initial voters' names, sorted (empty for a node that joined).
    pub voters: Vec<String>,
    /// The initial voters' addresses, by name (absent in files from before
    /// membership changes: then `PEERS`, which must name the same voters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberAddress>,
    /// The member URL this node joined through, if it joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<String>,
    /// Not recorded: whether the configured cluster id was given rather than derived.
    #[serde(skip)]
    pub cluster_id_given: bool,
}

impl Identity {
    /// The identity a configuration describes.
    pub fn of(config: &NodeConfig) -> Identity {
        Identity {
            cluster_id: config.cluster_id.clone(),
            node: config.name.clone(),
            voters: config.voter_names(),
            members: config.bootstrap_members(),
            joined: config.join.clone(),
            cluster_id_given: config.cluster_id_given,
        }
    }
}

/// The cluster id derived from the voters' names (see the module docs).
pub fn derived_cluster_id(voter_names: &[String]) -> String {
    let mut names = voter_names.to_vec();
    names.sort();
    let digest = ring::digest::digest(&ring::digest::SHA256, names.join("\n").as_bytes());
    digest.as_ref()[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the recorded identity, if any. A file that does not parse is an error.
pub fn load(dir: &Path) -> Result<Option<Identity>, String> {
    let path = path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| format!("{} is damaged ({error}); restore it or move the directory away", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Compares the recorded identity with the configuration, given the voters
/// of the stored configuration (`stored`, names sorted; `None` when the log
/// and snapshot hold none); `Err` says what differs, in one line.
pub fn compare(
    recorded: &Identity,
    configured: &Identity,
    stored: Option<&[String]>,
    dir: &Path,
) -> Result<(), String> {
    let place = path(dir);
    if recorded.node != configured.node {
        return Err(format!(
            "{} belongs to node {:?}, but this node is {:?}; start it with NODE_ID={:?} or give it its own data directory",
            place.display(),
            recorded.node,
            configured.node,
            recorded.node
        ));
    }
    let joined_restart = recorded.joined.is_some()
        && (configured.joined.is_some() || configured.voters == std::slice::from_ref(&configured.node));
    let names_stored = stored.is_some_and(|stored| stored == configured.voters.as_slice());
    let peers_agree = recorded.voters == configured.voters || joined_restart || names_stored;
    if !peers_agree && recorded.joined.is_some() {
        return Err(format!(
            "{} belongs to a node that joined its cluster through {}, but PEERS names the voters [{}] and the stored configuration's are [{}]; start it with RAFT_JOIN (or without PEERS), or give it a fresh data directory",
            path(dir).display(),
            recorded.joined.as_deref().unwrap_or_default(),
            configured.voters.join(","),
            stored.unwrap_or_default().join(","),
        ));
    }
    if !peers_agree && configured.joined.is_some() {
        return Err(format!(
            "{} belongs to a member of an existing cluster (initial voters [{}]); RAFT_JOIN only starts a new data directory: start it without RAFT_JOIN, or give it a fresh data directory",
            path(dir).display(),
            recorded.voters.join(","),
        ));
    }
    if !peers_agree {
        let stored_note = match stored {
            Some(stored) => format!(", stored configuration [{}]", stored.join(",")),
            None => String::new(),
        };
        let missing: Vec<&str> =
            recorded.voters.iter().filter(|v| !configured.voters.contains(v)).map(String::as_str).collect();
        let extra: Vec<&str> =
            configured.voters.iter().filter(|v| !recorded.voters.contains(v)).map(String::as_str).collect();
        return Err(format!(
            "the configured peers contradict the voters recorded in {}: recorded [{}]{stored_note}, configured [{}] (missing [{}], not recorded [{}]); start with the recorded peers (or the stored configuration's voters) or give this node a fresh data directory",
            place.display(),
            recorded.voters.join(","),
            configured.voters.join(","),
            missing.join(","),
            extra.join(",")
        ));
    }
    // A derived id follows the configured voters, which may now be the stored
    // ones: only a given id (RAFT_CLUSTER_ID) or the same voters must agree.
    let same_source =
        configured.cluster_id_given || (recorded.voters == configured.voters && configured.joined.is_none());
    if same_source && recorded.cluster_id != configured.cluster_id {
        return Err(format!(
            "{} belongs to cluster {}, but this node is configured for cluster {} (RAFT_CLUSTER_ID); use the recorded id or a fresh data directory",
            place.display(),
            recorded.cluster_id,
            configured.cluster_id
        ));
    }
    Ok(())
}

/// Writes `identity` atomically: temp file, fsync, rename, fsync of the directory.
pub fn record(dir: &Path, identity: &Identity) -> Result<(), String> {
    let fail = |what: &str, error: std::io::Error| format!("cannot {what} in {}: {error}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| fail("create the data directory", e))?;
    let temp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut bytes = serde_json::to_vec_pretty(identity).expect("an identity serializes");
    bytes.push(b'\n');
    let mut file = std::fs::File::create(&temp).map_err(|e| fail("create identity.json.tmp", e))?;
    file.write_all(&bytes).map_err(|e| fail("write identity.json.tmp", e))?;
    file.sync_all().map_err(|e| fail("fsync identity.json.tmp", e))?;
    drop(file);
    std::fs::rename(&temp, path(dir)).map_err(|e| fail("rename identity.json.tmp", e))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fail("fsync the directory", e))?;
    Ok(())
}

/// Start-up check: refuses a directory of another node, cluster or voter set;
/// records the identity on the first start. `pristine`: the directory holds no
/// durable Raft state yet (term 0, no entries, no snapshot), so a different
/// recorded identity is replaced rather than refused. `stored`: the voters of
/// the stored configuration, if any (see [`compare`]). Returns the identity in force.
pub fn check_or_record(config: &NodeConfig, pristine: bool, stored: Option<&[String]>) -> Result<Identity, String> {
    let configured = Identity::of(config);
    match load(&config.data_dir)? {
        Some(recorded) => match compare(&recorded, &configured, stored, &config.data_dir) {
            Ok(()) => Ok(recorded),
            Err(problem) if pristine => {
                tracing::warn!("{problem}; the node has no Raft state yet, so the new configuration replaces it");
                record(&config.data_dir, &configured)?;
                Ok(configured)
            }
            Err(problem) => Err(problem),
        },
        None => {
            record(&config.data_dir, &configured)?;
            tracing::info!(cluster_id = %configured.cluster_id, voters = %configured.voters.join(","), "recorded this node's identity");
            Ok(configured)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(node: &str, voters: &[&str], cluster: &str) -> Identity {
        Identity {
            cluster_id: cluster.into(),
            node: node.into(),
            voters: voters.iter().map(|v| v.to_string()).collect(),
            members: Vec::new(),
            joined: None,
            cluster_id_given: false,
        }
    }

    #[test]
    fn the_derived_id_depends_on_the_voter_set_only() {
        let a = derived_cluster_id(&["n1".into(), "n0".into(), "n2".into()]);
        let b = derived_cluster_id(&["n0".into(), "n2".into(), "n1".into()]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert_ne!(a, derived_cluster_id(&["n0".into(), "n1".into()]));
    }

    #[test]
    fn records_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("n0");
        assert_eq!(load(&sub).unwrap(), None);
        let mine = identity("n0", &["n0", "n1"], "c1");
        record(&sub, &mine).unwrap();
        assert_eq!(load(&sub).unwrap(), Some(mine));
        assert!(!sub.join("identity.json.tmp").exists());
        std::fs::write(sub.join(FILE_NAME), b"{nope").unwrap();
        assert!(load(&sub).unwrap_err().contains("damaged"));
    }

    #[test]
    fn differences_are_named() {
        let dir = Path::new("/d");
        let recorded = identity("n0", &["n0", "n1", "n2"], "c1");
        assert!(compare(&recorded, &recorded.clone(), None, dir).is_ok());
        let other_node = compare(&recorded, &identity("n9", &["n0", "n1", "n2"], "c1"), None, dir).unwrap_err();
        assert!(other_node.contains("belongs to node \"n0\""), "{other_node}");
        let fewer = compare(&recorded, &identity("n0", &["n0"], "c1"), None, dir).unwrap_err();
        assert!(fewer.contains("missing [n1,n2]"), "{fewer}");
        let other_cluster = compare(&recorded, &identity("n0", &["n0", "n1", "n2"], "c2"), None, dir).unwrap_err();
        assert!(other_cluster.contains("belongs to cluster c1"), "{other_cluster}");
        for problem in [other_node, fewer, other_cluster] {
            assert!(!problem.contains('\n'));
        }
    }

    #[test]
    fn after_a_membership_change_the_first_or_the_stored_voters_are_accepted_and_nothing_else() {
        let dir = Path::new("/d");
        let recorded = identity("a", &["a", "b", "c"], "c1");
        let stored: Vec<String> = ["a", "b", "d"].map(String::from).to_vec();
        let first = identity("a", &["a", "b", "c"], "c1");
        assert!(compare(&recorded, &first, Some(&stored), dir).is_ok(), "PEERS as at the first start");
        let current = identity("a", &["a", "b", "d"], "derived-from-abd");
        assert!(compare(&recorded, &current, Some(&stored), dir).is_ok(), "PEERS updated to the stored voters");
        let other = identity("a", &["a", "e"], "c1");
        let problem = compare(&recorded, &other, Some(&stored), dir).unwrap_err();
        assert!(problem.contains("recorded [a,b,c], stored configuration [a,b,d], configured [a,e]"), "{problem}");
        let given = Identity { cluster_id_given: true, ..identity("a", &["a", "b", "d"], "c2") };
        assert!(compare(&recorded, &given, Some(&stored), dir).unwrap_err().contains("belongs to cluster c1"));
    }

    #[test]
    fn a_joined_node_restarts_with_join_or_without_peers_only() {
        let dir = Path::new("/d");
        let joined = Identity { joined: Some("http://h:1".into()), ..identity("d", &[], "c1") };
        let again = Identity { joined: Some("http://other:2".into()), ..identity("d", &[], "derived") };
        assert!(compare(&joined, &again, None, dir).is_ok());
        assert!(compare(&joined, &identity("d", &["d"], "derived"), Some(&["a".into(), "d".into()]), dir).is_ok());
        let peers = compare(&joined, &identity("d", &["d", "x"], "c1"), None, dir).unwrap_err();
        assert!(peers.contains("joined its cluster through http://h:1"), "{peers}");
        let bootstrapped = identity("a", &["a", "b"], "c1");
        let join = Identity { joined: Some("http://h:1".into()), ..identity("a", &[], "c1") };
        assert!(compare(&bootstrapped, &join, None, dir).unwrap_err().contains("RAFT_JOIN only starts"));
    }

    #[test]
    fn a_node_without_raft_state_takes_a_corrected_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let args = crate::config::ServeArgs {
            node_id: Some("a".into()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let single = args.resolve(|_| None).unwrap();
        let pair = crate::config::ServeArgs {
            peers: Some("h:9081".into()),
            peer_ids: Some("b".into()),
            insecure_peers: true,
            ..args
        }
        .resolve(|_| None)
        .unwrap();
        check_or_record(&single, true, None).unwrap();
        assert!(check_or_record(&pair, false, None).unwrap_err().contains("contradict"));
        assert_eq!(check_or_record(&pair, true, None).unwrap().voters, ["a", "b"]);
        assert_eq!(load(&pair.data_dir).unwrap().unwrap().voters, ["a", "b"]);
    }
}
