//! `GET /watch`: a stream of JSON lines (`application/x-ndjson`), one per batch
//! of changes to a key, a range or a prefix, from a revision on.
//!
//! The stream is served from this node's applied history window only (a stale
//! read of [`raft_sm::kv::KvStore::watch`]): every line holds whole revisions,
//! in order, and the next read starts where the last ended, so there is no gap
//! and no duplicate. Every line carries `revision`: every matching change up to
//! it has been sent. A client that reconnects — to this node or another, after
//! a leader change — resumes with `rev` = that revision + 1. While nothing
//! changes, a `progress` line is sent every `progressMs`. The stream ends with
//! one error line: `compacted` (the start is below the history window; the
//! line gives `compactRevision`) or `slow_watcher` (the client let
//! [`WATCH_LINES_MAX`] lines pile up unread: it is cut off rather than letting
//! memory grow; resume from the last revision seen + 1).
//!
//! The stream waits on the driver's revision notifier
//! ([`crate::driver::Directory::revision`]), never on a polling timer.

use super::client::{ask_query, bad_request, key_range_of, kv_body};
use super::types::{ErrorCode, WatchEventBody, WatchLine, WatchQuery};
use super::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use raft_sm::kv::{EventKind, KeyRange, Query as KvQuery, QueryOutput, SharedEvent, WatchEvent, WatchRequest};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines a watcher may leave unread before it is cut off.
pub const WATCH_LINES_MAX: usize = 64;
/// Events read from the history per line (a revision is never split).
pub const WATCH_EVENTS_PER_LINE_MAX: usize = 256;
/// Default idle time before a progress line.
pub const WATCH_PROGRESS_MS_DEFAULT: u64 = 5_000;

/// What the stream task hands the renderer.
pub(super) enum Item {
    /// Changes, and the revision everything up to is sent.
    Events(Vec<SharedEvent>, u64),
    /// Nothing changed up to this revision.
    Progress(u64),
    /// The stream ends: an error, the revision sent up to, and the compact revision if compacted.
    End(ErrorCode, String, u64, Option<u64>),
}

/// Starts the task that feeds a watch stream; `render` makes each item's bytes.
pub(super) fn stream(
    state: AppState,
    range: KeyRange,
    start_revision: u64,
    progress: Duration,
    first_line: Option<Bytes>,
    render: impl Fn(Item) -> Bytes + Send + Sync + 'static,
) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(WATCH_LINES_MAX);
    if let Some(line) = first_line {
        tx.try_send(line).expect("an empty channel has room");
    }
    tokio::spawn(async move {
        let mut revisions = state.directory.revision.subscribe();
        let mut next = start_revision;
        loop {
            revisions.borrow_and_update();
            let request =
                WatchRequest { range: range.clone(), start_revision: next, events_max: WATCH_EVENTS_PER_LINE_MAX };
            let batch = match ask_query(&state, KvQuery::Watch(request), true).await {
                Ok(QueryOutput::Watch(batch)) => batch,
                Ok(_) => return,
                Err(error) => {
                    let line =
                        render(Item::End(error.code(), "the node could not serve the watch".into(), next - 1, None));
                    let _ = tx.try_send(line);
                    return;
                }
            };
            if batch.compacted {
                let message = format!(
                    "revision {next} is below the history window (compacted through {}); read the current state with a range and watch from its revision + 1",
                    batch.compact_revision
                );
                let _ = tx.try_send(render(Item::End(
                    ErrorCode::Compacted,
                    message,
                    next.saturating_sub(1),
                    Some(batch.compact_revision),
                )));
                return;
            }
            // Everything up to `queued_through` is queued; this batch goes up to `sent_through`.
            let queued_through = next - 1;
            next = batch.next_revision;
            let sent_through = next - 1;
            if !batch.events.is_empty() {
                if !send(&tx, render(Item::Events(batch.events, sent_through)), &render, queued_through).await {
                    return;
                }
                continue;
            }
            tokio::select! {
                changed = revisions.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(progress) => {
                    if !send(&tx, render(Item::Progress(sent_through)), &render, queued_through).await {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<Bytes, Infallible>(line), rx))
    });
    Body::from_stream(lines)
}

/// Queues a line; false when the stream is over (the client left, or it was
/// too slow and got the `slow_watcher` line in the slot kept for it).
async fn send(tx: &mpsc::Sender<Bytes>, line: Bytes, render: &impl Fn(Item) -> Bytes, queued_through: u64) -> bool {
    if tx.capacity() <= 1 {
        let message = format!(
            "the watcher left {} lines unread and was cut off; resume with rev={}",
            WATCH_LINES_MAX - 1,
            queued_through + 1
        );
        let _ = tx.try_send(render(Item::End(ErrorCode::SlowWatcher, message, queued_through, None)));
        return false;
    }
    tx.send(line).await.is_ok()
}

fn event_body(event: &WatchEvent) -> WatchEventBody {
    WatchEventBody {
        kind: match event.kind {
            EventKind::Put => "put".into(),
            EventKind::Delete => "delete".into(),
        },
        kv: kv_body(event.kv.clone(), false),
        prev_kv: event.prev.as_ref().map(|kv| kv_body(kv.clone(), false)),
    }
}

fn render_line(item: Item) -> Bytes {
    let line = match item {
        Item::Events(events, revision) => WatchLine {
            events: events.iter().map(|event| event_body(event)).collect(),
            revision,
            progress: false,
            error: None,
            compact_revision: None,
            message: None,
        },
        Item::Progress(revision) => WatchLine {
            events: Vec::new(),
            revision,
            progress: true,
            error: None,
            compact_revision: None,
            message: None,
        },
        Item::End(error, message, revision, compact_revision) => WatchLine {
            events: Vec::new(),
            revision,
            progress: false,
            error: Some(error),
            compact_revision,
            message: Some(message),
        },
    };
    let mut bytes = serde_json::to_vec(&line).expect("a watch line serializes");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// `GET /watch?key=K` (or `prefix=P`, or `key=K&end=E`) `&rev=N&progressMs=M`.
pub async fn watch(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let Query(query) = Query::<WatchQuery>::try_from_uri(&uri).map_err(|rejection| {
        bad_request(ErrorCode::BadQuery, format!("bad query string: {}", rejection.body_text()))
    })?;
    let range = key_range_of(&query.key, &query.end, &query.prefix)?;
    let progress_ms = query.progress_ms.unwrap_or(WATCH_PROGRESS_MS_DEFAULT);
    if progress_ms == 0 {
        return Err(bad_request(ErrorCode::BadQuery, "progressMs must be at least 1"));
    }
    let (start, first_line) = match query.rev.unwrap_or(0) {
        // From now on: the revision after the one this node has applied. The
        // stream says at once which revision that is, so a client that loses
        // it before the first change resumes from there, not from a later
        // "now" that would skip the changes in between.
        0 => {
            let now = *state.directory.revision.borrow();
            (now + 1, Some(render_line(Item::Progress(now))))
        }
        rev => (rev, None),
    };
    let body = stream(state, range, start, Duration::from_millis(progress_ms), first_line, render_line);
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
