//! `GET /api/trace`: the kernel's crank traces (`ocap_kernel::CrankTrace`) as Server-Sent
//! Events, for the Trace page. Each `crank` event's data is one crank as JSON (`crank`,
//! `work`, `endpoint`, `syscalls`, `syscallsOmitted`, `outcome`, `durationUs`); a `lagged`
//! event says how many cranks this client missed because it fell behind (the kernel never
//! waits for it). Behind the same guard as every route (cookie or bearer token).
//!
//! The kernel only builds traces while someone is subscribed, so a panel nobody watches the
//! Trace page of costs nothing. The stream ends when the daemon shuts down (so the server's
//! graceful shutdown is not held up) or when the kernel stops (`clearState` makes a new one:
//! the browser's `EventSource` reconnects, and subscribes to that).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::daemon::state::DaemonState;

/// How long the browser waits before reconnecting after the stream ended.
const RETRY: Duration = Duration::from_secs(1);

pub async fn stream(State(state): State<Arc<DaemonState>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let traces = state.kernel().await.trace_subscribe();
    let shutdown = state.shutdown_receiver();
    // The first event only sets the reconnection delay (and tells the page it is connected).
    let hello = Some(Event::default().event("hello").data("tracing").retry(RETRY));
    let events =
        futures_util::stream::unfold((traces, shutdown, hello), |(mut traces, mut shutdown, hello)| async move {
            if let Some(hello) = hello {
                return Some((Ok(hello), (traces, shutdown, None)));
            }
            let event = tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return None,
                received = traces.recv() => match received {
                    Ok(trace) => match Event::default().event("crank").json_data(&trace) {
                        Ok(event) => event,
                        Err(e) => Event::default().event("error").data(e.to_string()),
                    },
                    Err(RecvError::Lagged(missed)) => Event::default().event("lagged").data(missed.to_string()),
                    Err(RecvError::Closed) => return None,
                },
            };
            Some((Ok(event), (traces, shutdown, None)))
        });
    Sse::new(events).keep_alive(KeepAlive::default())
}
