//! Cluster identity in the data directory: `<data dir>/<node>/identity.json`.
//!
//! The first start records which cluster this directory belongs to (its id),
//! this node's name and the initial voters. Every later start compares: another
//! node name, another cluster id or a peer list that contradicts the recorded
//! voters is refused (exit 2, saying what differs), because running on would
//! let a member elect itself in a cluster of its own and diverge from the rest
//! (a split brain). A directory with data but no identity file (from before
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
    /// The initial voters' names, sorted.
    pub voters: Vec<String>,
}

impl Identity {
    /// The identity a configuration describes.
    pub fn of(config: &NodeConfig) -> Identity {
        Identity { cluster_id: config.cluster_id.clone(), node: config.name.clone(), voters: config.voter_names() }
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

/// Compares the recorded identity with the configuration; `Err` says what
/// differs, in one line.
pub fn compare(recorded: &Identity, configured: &Identity, dir: &Path) -> Result<(), String> {
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
    if recorded.voters != configured.voters {
        let missing: Vec<&str> =
            recorded.voters.iter().filter(|v| !configured.voters.contains(v)).map(String::as_str).collect();
        let extra: Vec<&str> =
            configured.voters.iter().filter(|v| !recorded.voters.contains(v)).map(String::as_str).collect();
        return Err(format!(
            "the configured peers contradict the voters recorded in {}: recorded [{}], configured [{}] (missing [{}], not recorded [{}]); start with the recorded peers or give this node a fresh data directory",
            place.display(),
            recorded.voters.join(","),
            configured.voters.join(","),
            missing.join(","),
            extra.join(",")
        ));
    }
    if recorded.cluster_id != configured.cluster_id {
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
/// recorded identity is replaced rather than refused. Returns the identity in force.
pub fn check_or_record(config: &NodeConfig, pristine: bool) -> Result<Identity, String> {
    let configured = Identity::of(config);
    match load(&config.data_dir)? {
        Some(recorded) => match compare(&recorded, &configured, &config.data_dir) {
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
        assert!(compare(&recorded, &recorded.clone(), dir).is_ok());
        let other_node = compare(&recorded, &identity("n9", &["n0", "n1", "n2"], "c1"), dir).unwrap_err();
        assert!(other_node.contains("belongs to node \"n0\""), "{other_node}");
        let fewer = compare(&recorded, &identity("n0", &["n0"], "c1"), dir).unwrap_err();
        assert!(fewer.contains("missing [n1,n2]"), "{fewer}");
        let other_cluster = compare(&recorded, &identity("n0", &["n0", "n1", "n2"], "c2"), dir).unwrap_err();
        assert!(other_cluster.contains("belongs to cluster c1"), "{other_cluster}");
        for problem in [other_node, fewer, other_cluster] {
            assert!(!problem.contains('\n'));
        }
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
        check_or_record(&single, true).unwrap();
        assert!(check_or_record(&pair, false).unwrap_err().contains("contradict"));
        assert_eq!(check_or_record(&pair, true).unwrap().voters, ["a", "b"]);
        assert_eq!(load(&pair.data_dir).unwrap().unwrap().voters, ["a", "b"]);
    }
}
