//! The address book: every member's name, Raft URL and client URL, so that a
//! node can dial a member added at runtime.
//!
//! **One source.** The addresses live in the cluster configuration itself:
//! each member's [`raft_sm::Membership::contexts`] entry is its
//! [`MemberAddress`] as JSON, carried by the log, snapshots and InstallSnapshot
//! like the rest of the configuration (the core never reads it). The book is
//! rebuilt from the configuration in effect (the latest appended, as the core
//! decides) every time it changes ([`AddressBook::update`]). Bootstrap voters
//! get theirs from `PEERS` (or the identity file, after the first start), and
//! a joining node from its `--join` member's list ([`AddressBook::seed`]):
//! seeds fill in members whose context is missing and let a node that is not
//! yet in any configuration answer the leader that contacts it.

use crate::config::{node_id_of, PeerConfig};
use raft_sm::{Membership, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Longest name or URL accepted for a member, in bytes.
pub const ADDRESS_BYTES_MAX: usize = 256;

/// One member's addresses: its context in the configuration (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddress {
    /// The user's name for it (its Raft id is [`node_id_of`] the name).
    pub name: String,
    /// Its Raft base URL, e.g. `http://10.0.0.4:9080`.
    pub raft_url: String,
    /// Its client API base URL, e.g. `http://10.0.0.4:8080`.
    pub client_url: String,
}

impl MemberAddress {
    /// Its Raft id.
    pub fn id(&self) -> NodeId {
        node_id_of(&self.name)
    }

    /// The bytes kept in the configuration.
    pub fn to_context(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an address serializes")
    }

    /// Reads a context back; `None` if it is not one (or not of member `id`).
    pub fn from_context(id: NodeId, context: &[u8]) -> Option<MemberAddress> {
        serde_json::from_slice::<MemberAddress>(context).ok().filter(|address| address.id() == id)
    }

    /// As the transport's peer entry.
    pub fn to_peer(&self) -> PeerConfig {
        PeerConfig {
            name: self.name.clone(),
            id: self.id(),
            raft_url: self.raft_url.clone(),
            client_url: self.client_url.clone(),
        }
    }

    /// From a configured peer.
    pub fn of_peer(peer: &PeerConfig) -> MemberAddress {
        MemberAddress { name: peer.name.clone(), raft_url: peer.raft_url.clone(), client_url: peer.client_url.clone() }
    }

    /// Checks a name and URLs given by an operator; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || name.contains(['/', '\\', ',']) || name.starts_with('.') || name.len() > 64 {
            return Err(format!(
                "member name {name:?} must be 1 to 64 bytes without '/', '\\' or ',' and not start with '.'"
            ));
        }
        for (what, url) in [("raft_url", &self.raft_url), ("client_url", &self.client_url)] {
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            let rest = url.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
            let port_ok =
                rest.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !scheme_ok || !port_ok || url.len() > ADDRESS_BYTES_MAX || rest.contains('/') {
                return Err(format!("{what} {url:?} must be http(s)://host:port"));
            }
        }
        Ok(())
    }
}

/// The configuration in effect and every member's addresses (see the module docs).
#[derive(Debug, Default)]
pub struct AddressBook {
    inner: RwLock<Book>,
}

#[derive(Debug, Default)]
struct Book {
    membership: Membership,
    /// Members of `membership` with known addresses (this node included).
    members: BTreeMap<NodeId, MemberAddress>,
    /// Addresses known from configuration or the join target.
    seeds: BTreeMap<NodeId, MemberAddress>,
}

impl AddressBook {
    /// A book with `seeds` (this node, its `PEERS`, or its join member's list).
    pub fn new(seeds: impl IntoIterator<Item = MemberAddress>) -> AddressBook {
        let book = AddressBook::default();
        book.seed(seeds);
        book
    }

    /// Adds addresses to fall back on.
    pub fn seed(&self, seeds: impl IntoIterator<Item = MemberAddress>) {
        let mut book = self.inner.write().expect("not poisoned");
        for address in seeds {
            book.seeds.insert(address.id(), address);
        }
    }

    /// The configuration changed (appended, truncated or installed): rebuild.
    pub fn update(&self, membership: &Membership) {
        let mut book = self.inner.write().expect("not poisoned");
        let mut members = BTreeMap::new();
        for id in membership.members() {
            let from_context = membership.context(id).and_then(|context| MemberAddress::from_context(id, context));
            if let Some(address) = from_context.or_else(|| book.seeds.get(&id).cloned()) {
                members.insert(id, address);
            }
        }
        book.members = members;
        book.membership = membership.clone();
    }

    /// The configuration in effect.
    pub fn membership(&self) -> Membership {
        self.inner.read().expect("not poisoned").membership.clone()
    }

    /// The addresses of `id`: a member's, else a seed's.
    pub fn get(&self, id: NodeId) -> Option<MemberAddress> {
        let book = self.inner.read().expect("not poisoned");
        book.members.get(&id).or_else(|| book.seeds.get(&id)).cloned()
    }

    /// Whether `id` may talk to this node over the Raft port: a member, or a
    /// seed (a joining node knows only those; the core drops what a
    /// non-member may not say).
    pub fn knows(&self, id: NodeId) -> bool {
        let book = self.inner.read().expect("not poisoned");
        book.members.contains_key(&id) || book.seeds.contains_key(&id) || book.membership.contains(id)
    }

    /// Every member's addresses (with known ones), by id.
    pub fn members(&self) -> BTreeMap<NodeId, MemberAddress> {
        self.inner.read().expect("not poisoned").members.clone()
    }

    /// The contexts of `addresses`, for a bootstrap configuration.
    pub fn contexts_of<'a>(addresses: impl IntoIterator<Item = &'a MemberAddress>) -> BTreeMap<NodeId, Vec<u8>> {
        addresses.into_iter().map(|address| (address.id(), address.to_context())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(name: &str, port: u16) -> MemberAddress {
        MemberAddress {
            name: name.into(),
            raft_url: format!("http://h:{}", port + 1000),
            client_url: format!("http://h:{port}"),
        }
    }

    #[test]
    fn the_configuration_wins_over_seeds_and_drops_removed_members() {
        let (a, b, c) = (address("a", 1), address("b", 2), address("c", 3));
        let book = AddressBook::new([a.clone(), b.clone()]);
        let moved_b = MemberAddress { raft_url: "http://elsewhere:7".into(), ..b.clone() };
        let contexts = AddressBook::contexts_of([&moved_b, &c]);
        let membership = Membership::with_learners([a.id(), b.id()], [c.id()]).with_contexts(contexts);
        book.update(&membership);
        assert_eq!(book.get(b.id()), Some(moved_b), "the configuration's context wins");
        assert_eq!(book.get(a.id()), Some(a.clone()), "a member without a context keeps its seed");
        assert_eq!(book.get(c.id()), Some(c.clone()), "a member added at runtime is dialable");
        assert_eq!(book.members().len(), 3);
        book.update(&Membership::new([a.id(), b.id()]));
        assert!(!book.members().contains_key(&c.id()), "removed");
        assert!(!book.knows(c.id()));
        assert!(book.knows(b.id()));
    }

    #[test]
    fn contexts_round_trip_and_bad_addresses_say_why() {
        let a = address("a", 1);
        assert_eq!(MemberAddress::from_context(a.id(), &a.to_context()), Some(a.clone()));
        assert_eq!(MemberAddress::from_context(NodeId(1), &a.to_context()), None, "another member's");
        assert_eq!(MemberAddress::from_context(a.id(), b"{nope"), None);
        assert!(a.validate().is_ok());
        let bad = MemberAddress { raft_url: "h:1".into(), ..a.clone() };
        assert!(bad.validate().unwrap_err().contains("raft_url"));
        let bad = MemberAddress { name: "a/b".into(), ..a };
        assert!(bad.validate().unwrap_err().contains("member name"));
    }
}
