//! A job's event stream: long-poll and server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bm_api::jobs::{EventsPage, EventsQuery, JobState};
use bm_api::{ApiError, ErrorCode};
use futures::Stream;
use tokio::time::Instant;
use warp::reply::Response;
use warp::Reply as _;

use super::jobs::{me, visible};
use super::{reply, Ctx};
use crate::sm::joblog::LogView;
use crate::sm::EventLog;

/// Most events one page carries.
const PAGE: u64 = 10_000;
/// Longest long-poll.
const MAX_WAIT: u64 = bm_api::patience::MAX_WAIT_SECS;

/// The part of a job's log a page holds, taken out of the state.
type PageView = (LogView, JobState);

fn view_of(s: &crate::sm::State, me: &str, job: &str, minseq: u64) -> Result<PageView, ApiError> {
    let rec = visible(s, me, job)?;
    Ok((rec.events.view(minseq, minseq.saturating_add(PAGE)), rec.job.state))
}

/// The page's events, with the log chunks it names read from this node
/// (or a peer, when this node lacks one).
async fn resolve(ctx: &Ctx, (view, job_state): PageView) -> Result<EventsPage, ApiError> {
    let shas = view.chunks();
    let loaded =
        futures::future::try_join_all(shas.iter().map(|sha| crate::chunks::fetch::load(&ctx.node, sha))).await?;
    let chunks: HashMap<[u8; 32], Arc<EventLog>> = shas.into_iter().zip(loaded).collect();
    let events = view.events(|sha| chunks.get(sha).cloned()).map_err(|sha| {
        ApiError::new(
            ErrorCode::Internal,
            format!("log chunk {} holds fewer events than the job's log says", crate::chunks::hex(&sha)),
        )
    })?;
    Ok(EventsPage { events, job_state })
}

async fn page(ctx: &Ctx, job: &str, minseq: u64) -> Result<EventsPage, ApiError> {
    let me = me(ctx)?;
    let view = ctx.node.read(|s| view_of(s, &me, job, minseq))?;
    resolve(ctx, view).await
}

/// The first page of a request: a job this node does not know yet is
/// looked for again once it has caught up with the leader, so a job just
/// submitted through another node is followed, not refused.
async fn first_page(ctx: &Ctx, job: &str, minseq: u64) -> Result<EventsPage, ApiError> {
    let me = me(ctx)?;
    let view = ctx.node.read_found(|s| view_of(s, &me, job, minseq)).await?;
    resolve(ctx, view).await
}

/// Events from `minseq`; with `wait`, holds the request until there are
/// some, the job ends, or the wait runs out.
#[utoipa::path(get, operation_id = "events_long_poll", path = "/v1/jobs/{job}/events", tag = "jobs", params(("job" = String, Path), EventsQuery),
    responses((status = 200, body = EventsPage), (status = 404, body = ApiError)))]
pub async fn long_poll(ctx: Ctx, job: String, raw_query: String) -> Result<EventsPage, ApiError> {
    let q: EventsQuery = reply::query(&raw_query)?;
    let deadline = Instant::now() + Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT));
    let mut watch = ctx.node.watch();
    first_page(&ctx, &job, q.minseq).await?;
    loop {
        watch.borrow_and_update();
        let p = page(&ctx, &job, q.minseq).await?;
        if !p.events.is_empty() || p.job_state.is_terminal() || Instant::now() >= deadline {
            return Ok(p);
        }
        if tokio::time::timeout_at(deadline, watch.changed()).await.is_err() {
            return page(&ctx, &job, q.minseq).await;
        }
    }
}

/// The same events as a `text/event-stream`: each event's `id` is its
/// sequence number, its `event` the stream name, its data the JSON event.
/// The stream ends after the job's last event.
#[utoipa::path(get, operation_id = "events_sse", path = "/v1/jobs/{job}/events/sse", tag = "jobs", params(("job" = String, Path), EventsQuery),
    responses((status = 200, description = "server-sent events", content_type = "text/event-stream")))]
pub async fn sse(ctx: Ctx, job: String, raw_query: String) -> Response {
    let q: EventsQuery = match reply::query(&raw_query) {
        Ok(q) => q,
        Err(e) => return reply::error(&e),
    };
    if let Err(e) = first_page(&ctx, &job, u64::MAX).await {
        return reply::error(&e);
    }
    let stream = event_stream(ctx, job, q.minseq);
    warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response()
}

fn event_stream(ctx: Ctx, job: String, minseq: u64) -> impl Stream<Item = Result<warp::sse::Event, Infallible>> {
    let watch = ctx.node.watch();
    let state = (ctx, job, minseq, watch, std::collections::VecDeque::<bm_api::jobs::JobEvent>::new(), false);
    futures::stream::unfold(state, |(ctx, job, mut next, mut watch, mut queue, mut done)| async move {
        loop {
            if let Some(e) = queue.pop_front() {
                let ev = warp::sse::Event::default()
                    .id(e.seq.to_string())
                    .event(serde_json::to_value(&e).ok()?.get("stream")?.as_str()?.to_string())
                    .json_data(&e)
                    .ok()?;
                next = e.seq + 1;
                return Some((Ok(ev), (ctx, job, next, watch, queue, done)));
            }
            if done {
                return None;
            }
            watch.borrow_and_update();
            let p = match page(&ctx, &job, next).await {
                Ok(p) => p,
                // A log chunk no reachable node could give yet: try again.
                Err(e) if e.code == ErrorCode::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(_) => return None,
            };
            if p.events.is_empty() {
                if p.job_state.is_terminal() {
                    done = true;
                    continue;
                }
                watch.changed().await.ok()?;
                continue;
            }
            queue.extend(p.events);
        }
    })
}
