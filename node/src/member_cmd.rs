//! `raftkv member list|add|promote|demote|remove`: the membership admin API
//! ([`crate::api::members`]) from the command line. Requests go through the
//! client commands' [`Calls`] (leader hints followed, `503` retried until
//! `--timeout-ms`) with the cluster token as bearer (`--token`, env
//! `RAFT_CLUSTER_TOKEN`).

use crate::api::members::{AddMemberRequest, MemberBody, MembersBody};
use crate::cli::ClientArgs;
use crate::client_cmd::{report, with_calls, Calls};
use clap::{Args, Subcommand};
use reqwest::Method;

/// `raftkv member ...`.
#[derive(Subcommand, Debug)]
pub enum MemberAction {
    /// Show voters, learners and a change in progress (with lag and last contact).
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Add a node as a learner (start it first with an empty data directory and --join).
    Add {
        /// Its name (the NODE_ID it runs with).
        name: String,
        /// Its Raft URL, e.g. http://10.0.0.4:9080.
        #[arg(long)]
        raft_url: String,
        /// Its client URL, e.g. http://10.0.0.4:8080.
        #[arg(long)]
        client_url: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a learner a voter (refused until it has caught up; retry).
    Promote {
        /// The learner's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make a voter a learner.
    Demote {
        /// The voter's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a member (voter or learner, the leader too).
    Remove {
        /// The member's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Where membership requests go, and the credential they carry.
#[derive(Args, Debug, Clone)]
pub struct AdminArgs {
    /// The cluster token (sent as `Authorization: Bearer`).
    #[arg(long, env = "RAFT_CLUSTER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs a `raftkv member` command; returns the exit code.
pub async fn run(action: MemberAction) -> i32 {
    let (admin, method, path, body) = match action {
        MemberAction::List { admin } => (admin, Method::GET, "/cluster/members".to_owned(), None),
        MemberAction::Add { name, raft_url, client_url, admin } => {
            let request = AddMemberRequest { name, raft_url, client_url };
            let body = serde_json::to_value(request).expect("a request serializes");
            (admin, Method::POST, "/cluster/members".to_owned(), Some(body))
        }
        MemberAction::Promote { name, admin } => {
            (admin, Method::POST, format!("/cluster/members/{}/promote", encode(&name)), None)
        }
        MemberAction::Demote { name, admin } => {
            (admin, Method::POST, format!("/cluster/members/{}/demote", encode(&name)), None)
        }
        MemberAction::Remove { name, admin } => {
            (admin, Method::DELETE, format!("/cluster/members/{}", encode(&name)), None)
        }
    };
    let listing = method == Method::GET;
    with_calls(&admin.client, |calls: Calls| async move {
        let calls = calls.with_token(admin.token.clone());
        let result = calls.request::<MembersBody>(method, &path, None, body.as_ref()).await;
        report(result, |members| {
            if let (false, Some(index)) = (listing, members.index) {
                println!("applied at index {index}");
            }
            print!("{}", table(&members));
        })
    })
    .await
}

/// A member name as one path segment.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// One line per member: name, role, URLs, lag and last contact.
pub fn table(members: &MembersBody) -> String {
    let mut out = format!(
        "{:<16} {:<9} {:<28} {:<28} {:>8} {:>10}\n",
        "NAME", "ROLE", "RAFT_URL", "CLIENT_URL", "LAG", "CONTACT_MS"
    );
    let dash = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut line = |member: &MemberBody, role: &str| {
        let role = if member.leader { format!("{role}*") } else { role.to_owned() };
        out.push_str(&format!(
            "{:<16} {:<9} {:<28} {:<28} {:>8} {:>10}\n",
            member.name,
            role,
            member.raft_url,
            member.client_url,
            dash(member.lag_entries),
            dash(member.last_contact_ms)
        ));
    };
    for member in &members.voters {
        line(member, "voter");
    }
    for member in &members.learners {
        line(member, "learner");
    }
    for member in members.outgoing.iter().filter(|m| !members.voters.iter().any(|v| v.name == m.name)) {
        line(member, "outgoing");
    }
    if members.change_in_progress {
        out.push_str("a membership change is in progress\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(encode("node-8083"), "node-8083");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn the_table_marks_the_leader_and_a_change_in_progress() {
        let member = |name: &str, leader: bool| MemberBody {
            name: name.into(),
            raft_url: format!("http://h:{}", 9000),
            client_url: "http://h:8000".into(),
            leader,
            match_index: Some(7),
            lag_entries: Some(0),
            last_contact_ms: None,
        };
        let members = MembersBody {
            ok: true,
            cluster_id: "c".into(),
            leader_id: Some("a".into()),
            change_in_progress: true,
            voters: vec![member("a", true)],
            learners: vec![member("d", false)],
            outgoing: vec![],
            index: None,
        };
        let text = table(&members);
        assert!(text.lines().nth(1).unwrap().starts_with("a                voter*"), "{text}");
        assert!(text.contains("d                learner"), "{text}");
        assert!(text.ends_with("a membership change is in progress\n"), "{text}");
    }
}
