//! Cluster status and membership (admin). Any node answers; membership
//! changes run on the leader, so a follower passes them on.

use bm_api::cluster::{ClusterStatus, LeaderTransfer, MemberAdd};
use bm_api::{ApiError, ErrorCode};

use super::Ctx;
use crate::cluster::forward;
use crate::cluster::proto::{MemberOp, PeerCall};

/// The cluster's members, roles and replication progress (admin).
#[utoipa::path(get, operation_id = "cluster_status", path = "/v1/cluster", tag = "cluster",
    responses((status = 200, body = ClusterStatus)))]
pub async fn status(ctx: Ctx) -> Result<ClusterStatus, ApiError> {
    ctx.admin()?;
    Ok(crate::cluster::status::cluster(&ctx.node).await)
}

/// This node's commit latencies since it started, as histogram counts
/// (admin): from its write path taking a command to the command's outcome,
/// forwarding to the leader included. Subtract two readings for a period.
#[utoipa::path(get, operation_id = "cluster_latency", path = "/v1/cluster/latency", tag = "cluster",
    responses((status = 200, body = bm_api::latency::LatencyHistogram)))]
pub async fn latency(ctx: Ctx) -> Result<bm_api::latency::LatencyHistogram, ApiError> {
    ctx.admin()?;
    Ok(ctx.node.commit_latencies().reading(ctx.node.id()))
}

/// Adds a node: it joins as a learner, catches up, then becomes a voter (admin).
#[utoipa::path(post, operation_id = "cluster_add", path = "/v1/cluster/members", tag = "cluster",
    request_body = MemberAdd,
    responses((status = 200, body = ClusterStatus), (status = 409, body = ApiError)))]
pub async fn add(ctx: Ctx, body: bytes::Bytes) -> Result<ClusterStatus, ApiError> {
    ctx.admin()?;
    let add: MemberAdd = super::reply::body(&body)?;
    change(&ctx, MemberOp::Add(add)).await
}

/// Removes a node from the cluster (admin).
#[utoipa::path(delete, operation_id = "cluster_remove", path = "/v1/cluster/members/{id}", tag = "cluster",
    params(("id" = u64, Path)),
    responses((status = 200, body = ClusterStatus), (status = 404, body = ApiError)))]
pub async fn remove(ctx: Ctx, id: u64) -> Result<ClusterStatus, ApiError> {
    ctx.admin()?;
    change(&ctx, MemberOp::Remove(id)).await
}

/// Hands leadership to another voter (admin).
#[utoipa::path(post, operation_id = "cluster_transfer_leader", path = "/v1/cluster/leader", tag = "cluster",
    request_body = LeaderTransfer,
    responses((status = 200, body = ClusterStatus), (status = 400, body = ApiError)))]
pub async fn transfer(ctx: Ctx, body: bytes::Bytes) -> Result<ClusterStatus, ApiError> {
    ctx.admin()?;
    let t: LeaderTransfer = super::reply::body(&body)?;
    change(&ctx, MemberOp::TransferLeader(t.to)).await
}

async fn change(ctx: &Ctx, op: MemberOp) -> Result<ClusterStatus, ApiError> {
    let node = &ctx.node;
    let ep = node.peer_or_err()?;
    let within = std::time::Duration::from_secs(60);
    let call = PeerCall::Member(op.clone());
    match forward::to_leader(node.raft(), ep, node.id(), &call, within).await? {
        Some(bytes) => bm_raft::codec::decode("cluster status", &bytes)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string())),
        None => crate::cluster::membership::apply(node, op).await,
    }
}
