//! Runs one agent call with the same functions the HTTP agent API uses.

use bm_api::agent_link::proto::{AgentAnswer, AgentCall, AgentReply, AgentRequest, MAX_FRAME};
use bm_api::codec;
use bm_api::eventlog::EventLog;
use bm_api::{ApiError, ErrorCode};
use bytes::Bytes;
use quinn::RecvStream;

use crate::http::agent as api;
use crate::http::Ctx;
use crate::node::Node;

/// The bytes that follow an answer (an input's), streamed from disk or a
/// peer; an `Err` cuts the stream.
pub type Trailer = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// Answers `req`; an input's bytes come back as the trailer. An output's
/// bytes are read from `recv` only once the call passed its checks.
pub async fn call(node: &Node, req: AgentRequest, recv: &mut RecvStream) -> (AgentReply, Option<Trailer>) {
    if req.call == AgentCall::Hello {
        return (Ok(AgentAnswer::Hello { node: node.id() }), None);
    }
    let ctx = Ctx::with_token(node.clone(), req.token).await;
    match req.call {
        AgentCall::Hello => unreachable!("answered above"),
        AgentCall::Bootstrap(b) => (api::bootstrap_with(&ctx, b).await.map(AgentAnswer::Bootstrapped), None),
        AgentCall::Instruction { wait } => (api::next_within(&ctx, wait).await.map(AgentAnswer::Instruction), None),
        AgentCall::Start { job, epoch } => (api::start_with(&ctx, job, epoch).await.map(|_| AgentAnswer::Done), None),
        AgentCall::Events { job, epoch, first, size } => match events(&job, size, recv).await {
            Ok(log) => (api::events_packed(&ctx, job, epoch, first, log).await.map(|_| AgentAnswer::Done), None),
            Err(e) => (Err(e), None),
        },
        AgentCall::StorePut { job, name, put } => {
            (api::store_put_with(&ctx, job, name, put).await.map(|_| AgentAnswer::Done), None)
        }
        AgentCall::Finish { job, finish } => {
            (api::finish_with(&ctx, job, finish).await.map(|_| AgentAnswer::Done), None)
        }
        AgentCall::Output { job, epoch, path, size } => (output(&ctx, job, epoch, path, size, recv).await, None),
        AgentCall::Input { job, epoch, output } => match api::input_stream(&ctx, &job, &output, epoch).await {
            Ok((size, bytes)) => (Ok(AgentAnswer::Input { size }), bytes),
            Err(e) => (Err(e), None),
        },
    }
}

/// Reads and checks a packed batch of `size` bytes that follows the frame.
async fn events(job: &str, size: u64, recv: &mut RecvStream) -> Result<EventLog, ApiError> {
    let bad = |what: String| ApiError::new(ErrorCode::BadRequest, format!("events of job {job}: {what}"));
    if size > MAX_FRAME as u64 {
        let _ = recv.stop(quinn::VarInt::from_u32(0));
        return Err(bad(format!("a batch of {size} bytes is over the limit of {MAX_FRAME}")));
    }
    let bytes = bm_api::frame::read_bytes(recv, size as usize)
        .await
        .map_err(|e| bad(format!("batch not received whole ({size} bytes announced): {e}")))?;
    recv.read_to_end(0).await.map_err(|e| bad(format!("more than the {size} bytes announced ({e})")))?;
    codec::decode_limited("events", &bytes, MAX_FRAME).map_err(|e| bad(e.to_string()))
}

async fn output(ctx: &Ctx, job: String, epoch: u64, path: String, size: u64, recv: &mut RecvStream) -> AgentReply {
    let q = api::OutputQuery { epoch, path, size: Some(size) };
    let me = match api::output_check(ctx, &job, &q, size) {
        Ok(me) => me,
        Err(e) => {
            // Tell the agent to stop sending; the answer explains why.
            let _ = recv.stop(quinn::VarInt::from_u32(0));
            return Err(e);
        }
    };
    // The bytes go on to the stores piece by piece as they arrive.
    let path = q.path.clone();
    let pieces = futures::stream::unfold((recv, 0u64), move |(recv, got)| {
        let path = path.clone();
        async move {
            if got >= size {
                return None;
            }
            let n = (size - got).min(crate::blobs::CHUNK as u64);
            let read = match bm_api::frame::read_bytes(recv, n as usize).await {
                Ok(buf) if got + n < size => Ok(buf),
                // The last piece: the stream must end there.
                Ok(buf) => recv.read_to_end(0).await.map(|_| buf).map_err(|e| format!("more than announced ({e})")),
                Err(e) => Err(format!("{got} bytes came before: {e}")),
            };
            let piece = read.map(Bytes::from).map_err(|e| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("output {path} not received whole ({size} bytes announced): {e}"),
                )
            });
            Some((piece, (recv, got + n)))
        }
    });
    api::output_store(ctx, me, job, q, size, Box::pin(pieces)).await.map(AgentAnswer::Output)
}
