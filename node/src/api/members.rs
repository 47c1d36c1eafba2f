//! The membership admin API on the client port:
//!
//! ```text
//! GET    /cluster/members                  voters, learners, outgoing voters (leader: lag and last contact)
//! POST   /cluster/members                  add a learner: {"name","raftUrl","clientUrl"}
//! POST   /cluster/members/{name}/promote   learner → voter (refused until it has caught up)
//! POST   /cluster/members/{name}/demote    voter → learner
//! DELETE /cluster/members/{name}           remove a voter or a learner (the leader too)
//! ```
//!
//! Every route answers only on the leader (`409` with the leader hint
//! elsewhere, `503` while none is known, like the write endpoints) and is
//! authenticated like the Raft port: the cluster token as
//! `Authorization: Bearer <token>` (or `X-Raft-Token`), or with mutual TLS a
//! client certificate signed by the cluster CA. Without either a request gets
//! `401`; a node with neither configured refuses the API unless it runs with
//! `--insecure-peers`. The core's refusals are typed: `not_caught_up`,
//! `change_in_progress`, `no_commit_in_term` (503: retry), `unknown_member`
//! (404), `invalid_change`. A change answers once its configuration entry has
//! committed (a joint change: once the joint entry has; the leader leaves it
//! by itself).

use super::types::ErrorCode;
use super::{client, ApiError, AppState};
use crate::address_book::MemberAddress;
use crate::config::node_id_of;
use crate::driver::{Input, StatusView, WriteReply};
use crate::tls::PeerCertificate;
use crate::transport::{constant_time_eq, TOKEN_HEADER};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use raft_sm::{ChangeError, MembershipChange, NodeId, Rejection, Role};
use serde::{Deserialize, Serialize};

/// The admin routes (merged into the client router).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/cluster/members", get(list).post(add))
        .route("/cluster/members/{name}/promote", post(promote))
        .route("/cluster/members/{name}/demote", post(demote))
        .route("/cluster/members/{name}", delete(remove))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_admin))
        .with_state(state)
}

/// One member in `GET /cluster/members`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemberBody {
    /// Its name.
    pub name: String,
    /// Its Raft URL (empty if unknown).
    pub raft_url: String,
    /// Its client URL (empty if unknown).
    pub client_url: String,
    /// Whether it leads.
    #[serde(default)]
    pub leader: bool,
    /// Highest index known replicated on it (leader's view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_index: Option<u64>,
    /// Entries it is behind the leader's last index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_entries: Option<u64>,
    /// Milliseconds since it last answered the leader (`null` if it never did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_ms: Option<u64>,
}

/// The answer of `GET /cluster/members` (and of every change, once applied).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MembersBody {
    /// Always `true`.
    pub ok: bool,
    /// The cluster's id (a joining node records it).
    pub cluster_id: String,
    /// The leader's name.
    pub leader_id: Option<String>,
    /// Whether a change is in progress (uncommitted, or joint).
    pub change_in_progress: bool,
    /// The voters (during a joint change: the incoming ones).
    pub voters: Vec<MemberBody>,
    /// The learners.
    pub learners: Vec<MemberBody>,
    /// During a joint change: the outgoing voters.
    #[serde(default)]
    pub outgoing: Vec<MemberBody>,
    /// The index of the change's configuration entry (changes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl MembersBody {
    /// Every member's addresses, voters first (a member of both halves once).
    pub fn addresses(&self) -> Vec<MemberAddress> {
        let mut seen = std::collections::BTreeSet::new();
        self.voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners)
            .filter(|member| seen.insert(member.name.clone()))
            .map(|member| MemberAddress {
                name: member.name.clone(),
                raft_url: member.raft_url.clone(),
                client_url: member.client_url.clone(),
            })
            .collect()
    }
}

/// The body of `POST /cluster/members`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The new member's name (its `NODE_ID`).
    pub name: String,
    /// Its Raft URL.
    #[serde(rename = "raftUrl", alias = "raft_url")]
    pub raft_url: String,
    /// Its client URL.
    #[serde(rename = "clientUrl", alias = "client_url")]
    pub client_url: String,
}

/// The bearer token of a request, if any (`Authorization: Bearer`, or `X-Raft-Token`).
fn given_token(request: &Request) -> Option<&[u8]> {
    let headers = request.headers();
    if let Some(bearer) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return bearer.strip_prefix("Bearer ").map(|token| token.trim().as_bytes());
    }
    headers.get(TOKEN_HEADER).map(|v| v.as_bytes())
}

async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = &state.directory.config;
    let token_ok = match (&config.cluster_token, given_token(&request)) {
        (Some(expected), Some(given)) => constant_time_eq(given, expected.as_bytes()),
        _ => false,
    };
    // The client port verifies a presented certificate against the cluster CA.
    let certificate_ok = config.mutual_tls() && request.extensions().get::<PeerCertificate>().is_some();
    let open = config.cluster_token.is_none() && !config.mutual_tls() && config.insecure_peers;
    if token_ok || certificate_ok || open {
        return next.run(request).await;
    }
    let message = if config.cluster_token.is_none() && !config.mutual_tls() {
        "the membership API needs peer authentication: start the node with RAFT_CLUSTER_TOKEN (or mutual TLS)"
    } else {
        "the membership API needs the cluster token (`Authorization: Bearer <RAFT_CLUSTER_TOKEN>`) or a client certificate signed by the cluster CA"
    };
    tracing::warn!(path = %request.uri().path(), "unauthenticated membership request rejected");
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message).into_response()
}

/// The status, if this node leads; else the 409/503 with the hint.
async fn leader_status(state: &AppState) -> Result<StatusView, ApiError> {
    let status = state.status().await?;
    if status.role == Role::Leader {
        return Ok(status);
    }
    Err(client::rejected(state, Rejection::NotLeader { leader: status.leader }, false))
}

fn member_body(state: &AppState, status: &StatusView, id: NodeId) -> MemberBody {
    let address = state.directory.book.get(id);
    let contact = status.contacts.iter().find(|(peer, _, _)| *peer == id);
    let last_index = status.last_log.0 .0;
    let is_self = id == state.directory.config.id;
    let match_index = if is_self { Some(last_index) } else { contact.map(|(_, matched, _)| matched.0) };
    MemberBody {
        name: address.as_ref().map_or_else(|| id.to_string(), |a| a.name.clone()),
        raft_url: address.as_ref().map(|a| a.raft_url.clone()).unwrap_or_default(),
        client_url: address.as_ref().map(|a| a.client_url.clone()).unwrap_or_default(),
        leader: status.leader == Some(id),
        match_index,
        lag_entries: match_index.map(|matched| last_index.saturating_sub(matched)),
        last_contact_ms: if is_self { Some(0) } else { contact.and_then(|(_, _, ago)| *ago) },
    }
}

fn members_body(state: &AppState, status: &StatusView, index: Option<u64>) -> MembersBody {
    let membership = &status.membership;
    // By name: ids are hashes of the names, their order means nothing to a reader.
    let of = |ids: &[NodeId]| {
        let mut members: Vec<MemberBody> = ids.iter().map(|&id| member_body(state, status, id)).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
    };
    MembersBody {
        ok: true,
        cluster_id: state.directory.config.cluster_id.clone(),
        leader_id: status.leader.map(|id| state.directory.name(id)),
        change_in_progress: status.change_in_progress,
        voters: of(&membership.voters),
        learners: of(&membership.learners),
        outgoing: of(&membership.outgoing),
        index,
    }
}

async fn list(State(state): State<AppState>) -> Result<Json<MembersBody>, ApiError> {
    let status = leader_status(&state).await?;
    Ok(Json(members_body(&state, &status, None)))
}

async fn add(State(state): State<AppState>, body: axum::body::Bytes) -> Result<Json<MembersBody>, ApiError> {
    let request: AddMemberRequest = serde_json::from_slice(&body).map_err(|error| {
        client::bad_request(ErrorCode::BadJson, format!("expected {{\"name\",\"raftUrl\",\"clientUrl\"}}: {error}"))
    })?;
    let address = MemberAddress {
        name: request.name.trim().to_owned(),
        raft_url: request.raft_url.trim().trim_end_matches('/').to_owned(),
        client_url: request.client_url.trim().trim_end_matches('/').to_owned(),
    };
    address.validate().map_err(|problem| client::bad_request(ErrorCode::BadRequest, problem))?;
    leader_status(&state).await?;
    let change = MembershipChange::AddLearner(address.id());
    change_and_answer(&state, change, Some(address.to_context()), &address.name).await
}

/// The member named `name`: 404 if the configuration has none.
async fn member_named(state: &AppState, name: &str) -> Result<NodeId, ApiError> {
    let status = leader_status(state).await?;
    let id = node_id_of(name);
    if !status.membership.contains(id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownMember,
            format!("{name:?} is not a member (see GET /cluster/members)"),
        ));
    }
    Ok(id)
}

async fn promote(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<MembersBody>, ApiError> {
    let id = member_named(&state, &name).await?;
    change_and_answer(&state, MembershipChange::Promote(id), None, &name).await
}

async fn demote(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<MembersBody>, ApiError> {
    let id = member_named(&state, &name).await?;
    change_and_answer(&state, MembershipChange::Demote(id), None, &name).await
}

async fn remove(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<MembersBody>, ApiError> {
    let id = member_named(&state, &name).await?;
    change_and_answer(&state, MembershipChange::Remove(id), None, &name).await
}

/// Hands the change to the driver and answers once it applied (or why not).
async fn change_and_answer(
    state: &AppState,
    change: MembershipChange,
    context: Option<Vec<u8>>,
    name: &str,
) -> Result<Json<MembersBody>, ApiError> {
    let reply = state.ask(|reply| Input::ChangeMembership { change, context, reply }).await?;
    match reply {
        WriteReply::Applied(_, index) => {
            tracing::info!(%name, ?change, index = index.0, "membership change applied");
            // The leader may have removed itself: answer from whatever this node now knows.
            let status = state.status().await?;
            Ok(Json(members_body(state, &status, Some(index.0))))
        }
        WriteReply::Rejected(rejection) => Err(change_rejected(state, rejection, name)),
        WriteReply::Unknown => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::OutcomeUnknown,
            "leadership was lost before the change committed: it may or may not take effect; check GET /cluster/members",
        )),
        WriteReply::DiskFull => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DiskFull,
            "this node's disk is full; it accepts no changes",
        )),
    }
}

/// The core's refusal of a change, typed.
fn change_rejected(state: &AppState, rejection: Rejection, name: &str) -> ApiError {
    let named = |id: NodeId| state.directory.name(id);
    match rejection {
        Rejection::ChangeInProgress => ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::ChangeInProgress,
            "another membership change has not finished; retry once it has (GET /cluster/members shows changeInProgress)",
        ),
        Rejection::NoCommitInTerm => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NoCommitInTerm,
            "the leader is new and has not committed an entry of its term yet; retry shortly",
        ),
        Rejection::NotCaughtUp { id, lag_entries, silent_ms } => {
            let silence = match silent_ms {
                None => " and has never answered".to_owned(),
                Some(ms) => format!(", last heard {ms} ms ago"),
            };
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotCaughtUp,
                format!(
                    "learner {} is not caught up: {lag_entries} entries behind{silence}; retry once it has caught up (is it running?)",
                    named(id)
                ),
            )
        }
        Rejection::InvalidChange(ChangeError::NotAMember(_)) => {
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::UnknownMember, format!("{name:?} is not a member"))
        }
        Rejection::InvalidChange(error) => {
            let message = match error {
                ChangeError::AlreadyMember(id) => format!("{} is a member already", named(id)),
                ChangeError::NotALearner(id) => format!("{} is not a learner (add it as a learner first)", named(id)),
                ChangeError::NotAVoter(id) => format!("{} is not a voter", named(id)),
                other => other.to_string(),
            };
            ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidChange, message)
        }
        other => client::rejected(state, other, false),
    }
}
