//! `GET /console/events`: server-sent events that tell open pages the
//! evidence log grew, so they fetch their live parts again. The page
//! re-renders on the server with the viewer's own rights; the event itself
//! carries only the newest record number, nothing a viewer could not see.
//!
//! This replica's appends wake the stream at once; a poll of the newest
//! record number every few seconds also catches what other replicas
//! sharing the database wrote.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;
use warden_evidence::RecordKind;

use super::session::Viewer;
use crate::AppState;

/// How often the database is asked for the newest record number.
const POLL: Duration = Duration::from_secs(3);

/// Kinds that change what a console page shows.
fn interesting(kind: RecordKind) -> bool {
    !matches!(kind, RecordKind::AccessDenied)
}

/// The event stream of a signed-in viewer.
pub(crate) async fn stream(
    State(s): State<AppState>,
    _v: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.log.subscribe();
    let last = s.store.newest_seq().await.unwrap_or(-1);
    let events = stream::unfold((rx, last, s), |(mut rx, mut last, s)| async move {
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(r) if interesting(r.kind) => {
                        last = last.max(i64::try_from(r.seq).unwrap_or(i64::MAX));
                        break;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return None,
                },
                () = tokio::time::sleep(POLL) => {
                    if let Ok(n) = s.store.newest_seq().await
                        && n > last
                    {
                        last = n;
                        break;
                    }
                }
            }
        }
        // Let the rest of a burst land before pages fetch again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(r) = rx.try_recv() {
            last = last.max(i64::try_from(r.seq).unwrap_or(i64::MAX));
        }
        let ev = Event::default().event("change").data(last.to_string());
        Some((Ok(ev), (rx, last, s)))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
