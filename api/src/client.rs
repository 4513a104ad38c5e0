//! A typed client for the bm HTTP API.
//!
//! It takes a list of node URLs and fails over to the next one when a node
//! cannot be reached, does not answer in time (`crate::patience`), or says
//! it is unavailable, so callers need not know which node is up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agent::{AgentStorePut, BootstrapRequest, Bootstrapped, EventsUpload, Fenced, Finish, Instruction};
use crate::error::{ApiError, ErrorCode};
use crate::factories::*;
use crate::jobs::*;
use crate::targets::*;
use crate::users::*;
use crate::workers::*;

/// Why a call failed. Callers tell an API answer (with its stable code) from
/// a transport failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{status}: {error}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        error: ApiError,
    },
    /// No node could be reached.
    #[error("cannot reach bm at {urls}: {message}")]
    Transport {
        /// The URLs tried.
        urls: String,
        /// The last failure.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// This side stopped a transfer: the bytes of an upload could not be
    /// read, or a download's bytes could not be written. Not the node's
    /// fault, so not a reason to try another node.
    #[error("transfer stopped here: {message}")]
    Local {
        /// What failed.
        message: String,
    },
}

impl ClientError {
    /// The API error code, if the server answered.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

/// A handle on the API of a bm cluster.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    urls: Arc<Vec<String>>,
    current: Arc<AtomicUsize>,
    token: Option<String>,
    patience: Duration,
}

impl Client {
    /// A client for the nodes at `urls` (tried in turn) with a bearer token.
    pub fn new(urls: Vec<String>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(512)
            .build()
            .expect("build HTTP client");
        let urls = urls.into_iter().map(|u| u.trim_end_matches('/').to_string()).collect();
        Self {
            http,
            urls: Arc::new(urls),
            current: Arc::new(AtomicUsize::new(0)),
            token,
            patience: crate::patience::CALL,
        }
    }

    /// The same client with another base limit on one node's answer
    /// (default [`crate::patience::CALL`]; long-polls and uploads get
    /// their time on top, see [`crate::patience::limit`]).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The node URLs this client knows.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Sends a request, failing over between nodes on transport errors and
    /// `unavailable` answers. Returns the raw response on success.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_body(method, path, query, body.map(Body::Json).unwrap_or(Body::None)).await
    }

    /// Like [`Client::send`] with any kind of body (raw bytes for uploads).
    pub async fn send_body(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<reqwest::Response, ClientError> {
        let n = self.urls.len().max(1);
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::from("no node URL configured");
        for i in 0..n {
            let idx = (start + i) % n;
            let Some(base) = self.urls.get(idx) else { break };
            let url = format!("{base}/{}/{}", crate::PREFIX, path.trim_start_matches('/'));
            let mut req = self.http.request(method.clone(), &url).query(query);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let body_len = match &body {
                Body::None => 0,
                Body::Json(b) => {
                    req = req.json(b);
                    0
                }
                Body::JsonBytes(b) => {
                    req = req.header("content-type", "application/json").body(b.clone());
                    b.len()
                }
                Body::Bytes(b) => {
                    req = req.header("content-type", "application/octet-stream").body(b.clone());
                    b.len()
                }
                Body::Once(once, len) => match once.lock().expect("not poisoned").take() {
                    Some(b) => {
                        req = req.header("content-type", "application/octet-stream").body(b);
                        usize::try_from(*len).unwrap_or(usize::MAX)
                    }
                    // A stream is sent once: the caller makes it again and
                    // retries, starting at the next node.
                    None => {
                        self.current.store(idx, Ordering::Relaxed);
                        break;
                    }
                },
            };
            let limit = crate::patience::limit(self.patience, query, body_len);
            let Ok(sent) = tokio::time::timeout(limit, req.send()).await else {
                last = format!("{url}: no answer within {limit:?}");
                continue;
            };
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(resp);
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let error = serde_json::from_str::<ApiError>(&text).unwrap_or_else(|_| {
                        ApiError::new(code_for(status), format!("HTTP {status} from {url}: {}", text.trim()))
                    });
                    if error.code == ErrorCode::Unavailable && i + 1 < n {
                        last = error.message;
                        continue;
                    }
                    return Err(ClientError::Api { status: status.as_u16(), error });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(ClientError::Transport { urls: self.urls.join(","), message: last })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<bytes::Bytes>,
    ) -> Result<T, ClientError> {
        let resp = self.send_body(method, path, query, body.map(Body::JsonBytes).unwrap_or(Body::None)).await?;
        let url = resp.url().to_string();
        let bytes =
            resp.bytes().await.map_err(|e| ClientError::Protocol { url: url.clone(), message: e.to_string() })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol { url, message: e.to_string() })
    }

    /// Encodes a request body once, straight to bytes (a `Value` in
    /// between cost every call a tree of allocations).
    fn json<B: Serialize>(b: &B) -> Option<bytes::Bytes> {
        Some(serde_json::to_vec(b).expect("request types serialise").into())
    }

    /// Who am I?
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.call(Method::GET, "whoami", &[], None).await
    }

    /// Lists users (admin).
    pub async fn users(&self) -> Result<Vec<User>, ClientError> {
        self.call(Method::GET, "users", &[], None).await
    }

    /// Creates a user (admin); the answer holds its token.
    pub async fn user_create(&self, req: &UserCreate) -> Result<UserCreated, ClientError> {
        self.call(Method::POST, "users", &[], Self::json(req)).await
    }

    /// Shows a user by id or name (admin).
    pub async fn user(&self, user: &str) -> Result<User, ClientError> {
        self.call(Method::GET, &format!("users/{}", enc(user)), &[], None).await
    }

    /// Grants a privilege (admin).
    pub async fn user_grant(&self, user: &str, privilege: &str) -> Result<User, ClientError> {
        self.call(Method::PUT, &format!("users/{}/privileges/{}", enc(user), enc(privilege)), &[], None).await
    }

    /// Revokes a privilege (admin).
    pub async fn user_revoke(&self, user: &str, privilege: &str) -> Result<User, ClientError> {
        self.call(Method::DELETE, &format!("users/{}/privileges/{}", enc(user), enc(privilege)), &[], None).await
    }

    /// Lists targets.
    pub async fn targets(&self) -> Result<Vec<Target>, ClientError> {
        self.call(Method::GET, "targets", &[], None).await
    }

    /// Creates a target (admin).
    pub async fn target_create(&self, req: &TargetCreate) -> Result<Target, ClientError> {
        self.call(Method::POST, "targets", &[], Self::json(req)).await
    }

    /// Sets or clears a target's redirect (admin).
    pub async fn target_redirect(&self, target: &str, redirect: Option<String>) -> Result<Target, ClientError> {
        let body = TargetRedirect { redirect };
        self.call(Method::PUT, &format!("targets/{}/redirect", enc(target)), &[], Self::json(&body)).await
    }

    /// Submits a job. Without a `submit_key` the request gets a fresh one,
    /// so that the retries of this call (failover to another node after a
    /// lost answer) make the job once.
    pub async fn job_submit(&self, req: &JobSubmit) -> Result<Job, ClientError> {
        if req.submit_key.is_some() {
            return self.call(Method::POST, "jobs", &[], Self::json(req)).await;
        }
        let keyed = JobSubmit { submit_key: Some(ulid::Ulid::new().to_string()), ..req.clone() };
        self.call(Method::POST, "jobs", &[], Self::json(&keyed)).await
    }

    /// Lists jobs.
    pub async fn jobs(&self, q: &JobListQuery) -> Result<Vec<Job>, ClientError> {
        let mut query = Vec::new();
        if let Some(s) = q.state {
            query.push(("state", s.as_str().to_string()));
        }
        if let Some(o) = &q.owner {
            query.push(("owner", o.clone()));
        }
        if let Some(t) = &q.tag {
            query.push(("tag", t.clone()));
        }
        if let Some(t) = &q.target {
            query.push(("target", t.clone()));
        }
        if let Some(l) = q.limit {
            query.push(("limit", l.to_string()));
        }
        self.call(Method::GET, "jobs", &query, None).await
    }

    /// Shows a job.
    pub async fn job(&self, id: &str) -> Result<Job, ClientError> {
        self.call(Method::GET, &format!("jobs/{}", enc(id)), &[], None).await
    }

    /// Cancels a job.
    pub async fn job_cancel(&self, id: &str) -> Result<Job, ClientError> {
        self.call(Method::POST, &format!("jobs/{}/cancel", enc(id)), &[], None).await
    }

    /// Reads events from `minseq`, waiting up to `wait` seconds for some.
    pub async fn job_events(&self, id: &str, minseq: u64, wait: Option<u64>) -> Result<EventsPage, ClientError> {
        let mut q = vec![("minseq", minseq.to_string())];
        if let Some(w) = wait {
            q.push(("wait", w.to_string()));
        }
        self.call(Method::GET, &format!("jobs/{}/events", enc(id)), &q, None).await
    }

    /// Lists a job's outputs.
    pub async fn job_outputs(&self, id: &str) -> Result<Vec<JobOutput>, ClientError> {
        self.call(Method::GET, &format!("jobs/{}/outputs", enc(id)), &[], None).await
    }

    /// Starts downloading one output; the caller streams the body.
    pub async fn job_output_download(&self, id: &str, output: &str) -> Result<reqwest::Response, ClientError> {
        self.send(Method::GET, &format!("jobs/{}/outputs/{}", enc(id), enc(output)), &[], None).await
    }

    /// Lists a job's store.
    pub async fn job_store(&self, id: &str) -> Result<std::collections::BTreeMap<String, StoreValue>, ClientError> {
        self.call(Method::GET, &format!("jobs/{}/store", enc(id)), &[], None).await
    }

    /// Reads one job-store value.
    pub async fn job_store_get(&self, id: &str, name: &str) -> Result<StoreValue, ClientError> {
        self.call(Method::GET, &format!("jobs/{}/store/{}", enc(id), enc(name)), &[], None).await
    }

    /// Writes one job-store value.
    pub async fn job_store_put(&self, id: &str, name: &str, put: &StorePut) -> Result<StoreValue, ClientError> {
        self.call(Method::PUT, &format!("jobs/{}/store/{}", enc(id), enc(name)), &[], Self::json(put)).await
    }

    /// Lists factories (admin).
    pub async fn factories(&self) -> Result<Vec<Factory>, ClientError> {
        self.call(Method::GET, "factories", &[], None).await
    }

    /// Registers a factory (admin); the answer holds its token.
    pub async fn factory_create(&self, req: &FactoryCreate) -> Result<FactoryCreated, ClientError> {
        self.call(Method::POST, "factories", &[], Self::json(req)).await
    }

    /// Enables or disables a factory (admin).
    pub async fn factory_enable(&self, factory: &str, enabled: bool) -> Result<Factory, ClientError> {
        let verb = if enabled { "enable" } else { "disable" };
        self.call(Method::POST, &format!("factories/{}/{verb}", enc(factory)), &[], None).await
    }

    /// Factory: takes a worker request for one of `targets`, if any is waiting.
    pub async fn factory_lease(&self, req: &LeaseRequest) -> Result<Option<WorkerLease>, ClientError> {
        self.factory_lease_wait(req, 0).await
    }

    /// Like [`Client::factory_lease`], waiting up to `wait` seconds for a
    /// worker request when there is none.
    pub async fn factory_lease_wait(&self, req: &LeaseRequest, wait: u64) -> Result<Option<WorkerLease>, ClientError> {
        self.call(Method::POST, "factory/lease", &[("wait", wait.to_string())], Self::json(req)).await
    }

    /// Factory: reports the instance made for a worker.
    pub async fn factory_instance(&self, worker: &str, instance_id: &str) -> Result<Worker, ClientError> {
        let body = InstanceReport { instance_id: instance_id.to_string() };
        self.call(Method::POST, &format!("factory/workers/{}/instance", enc(worker)), &[], Self::json(&body)).await
    }

    /// Factory: reports a worker destroyed.
    pub async fn factory_destroyed(&self, worker: &str) -> Result<Worker, ClientError> {
        self.call(Method::POST, &format!("factory/workers/{}/destroyed", enc(worker)), &[], None).await
    }

    /// Factory: lists this factory's workers that are not destroyed (for reaping).
    pub async fn factory_workers(&self) -> Result<Vec<Worker>, ClientError> {
        self.call(Method::GET, "factory/workers", &[], None).await
    }

    /// Lists workers (admin); `all` includes destroyed ones.
    pub async fn workers(&self, all: bool) -> Result<Vec<Worker>, ClientError> {
        self.call(Method::GET, "workers", &[("all", all.to_string())], None).await
    }

    /// Holds, releases or recycles a worker (admin): `action` is `hold`, `release` or `recycle`.
    pub async fn worker_action(&self, worker: &str, action: &str) -> Result<Worker, ClientError> {
        self.call(Method::POST, &format!("workers/{}/{}", enc(worker), enc(action)), &[], None).await
    }

    /// Reads whether new work is held (admin).
    pub async fn control(&self) -> Result<Control, ClientError> {
        self.call(Method::GET, "control", &[], None).await
    }

    /// Holds (`true`) or resumes (`false`) the start of new work (admin).
    pub async fn control_hold(&self, hold: bool) -> Result<Control, ClientError> {
        let verb = if hold { "hold" } else { "resume" };
        self.call(Method::POST, &format!("control/{verb}"), &[], None).await
    }
}

/// Cluster status and membership (admin).
impl Client {
    /// Every member's role and progress, as the answering node sees it.
    pub async fn cluster_status(&self) -> Result<crate::cluster::ClusterStatus, ClientError> {
        self.call(Method::GET, "cluster", &[], None).await
    }

    /// The answering node's commit-latency counts since it started.
    pub async fn cluster_latency(&self) -> Result<crate::latency::LatencyHistogram, ClientError> {
        self.call(Method::GET, "cluster/latency", &[], None).await
    }

    /// Adds a node (learner, then voter unless `learner` is set).
    pub async fn cluster_add(
        &self,
        add: &crate::cluster::MemberAdd,
    ) -> Result<crate::cluster::ClusterStatus, ClientError> {
        self.call(Method::POST, "cluster/members", &[], Self::json(add)).await
    }

    /// Removes a node.
    pub async fn cluster_remove(&self, id: u64) -> Result<crate::cluster::ClusterStatus, ClientError> {
        self.call(Method::DELETE, &format!("cluster/members/{id}"), &[], None).await
    }

    /// Hands leadership to voter `to`.
    pub async fn cluster_transfer_leader(&self, to: u64) -> Result<crate::cluster::ClusterStatus, ClientError> {
        let req = crate::cluster::LeaderTransfer { to };
        self.call(Method::POST, "cluster/leader", &[], Self::json(&req)).await
    }
}

/// A request body.
pub enum Body<'a> {
    /// None.
    None,
    /// JSON.
    Json(&'a serde_json::Value),
    /// A JSON document already encoded.
    JsonBytes(bytes::Bytes),
    /// Raw bytes (uploads).
    Bytes(bytes::Bytes),
    /// A streamed upload of the given length, sent to one node only: it
    /// cannot be replayed, so on failure the next call starts at the next node.
    Once(std::sync::Mutex<Option<reqwest::Body>>, u64),
}

/// Calls an agent makes with its worker credential.
impl Client {
    /// Exchanges the single-use bootstrap token for a worker credential.
    pub async fn agent_bootstrap(&self, bootstrap_token: &str) -> Result<Bootstrapped, ClientError> {
        let req = BootstrapRequest { bootstrap_token: bootstrap_token.to_string() };
        self.call(Method::POST, "agent/bootstrap", &[], Self::json(&req)).await
    }

    /// Asks what to do next, waiting up to `wait` seconds for work. Also the heartbeat.
    pub async fn agent_instruction(&self, wait: u64) -> Result<Instruction, ClientError> {
        self.call(Method::GET, "agent/instruction", &[("wait", wait.to_string())], None).await
    }

    /// Reports the job started.
    pub async fn agent_start(&self, job: &str, epoch: u64) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(Method::POST, &format!("agent/jobs/{}/start", enc(job)), &[], Self::json(&Fenced { epoch }))
            .await?;
        Ok(())
    }

    /// Sends log lines and control messages.
    pub async fn agent_events(&self, job: &str, upload: &EventsUpload) -> Result<(), ClientError> {
        let _: serde_json::Value =
            self.call(Method::POST, &format!("agent/jobs/{}/events", enc(job)), &[], Self::json(upload)).await?;
        Ok(())
    }

    /// Uploads one output file found at `path` in the worker.
    pub async fn agent_output(
        &self,
        job: &str,
        epoch: u64,
        path: &str,
        data: bytes::Bytes,
    ) -> Result<JobOutput, ClientError> {
        let q = [("epoch", epoch.to_string()), ("path", path.to_string())];
        let resp =
            self.send_body(Method::PUT, &format!("agent/jobs/{}/outputs", enc(job)), &q, Body::Bytes(data)).await?;
        let url = resp.url().to_string();
        resp.json().await.map_err(|e| ClientError::Protocol { url, message: e.to_string() })
    }

    /// Uploads one output file of `size` bytes read as it goes (chunked,
    /// its size in the query): the node stores it only if exactly `size`
    /// bytes arrive and the body ends cleanly, so an upload whose source
    /// fails (an `Err` from `body`) stores nothing. Tried on one node; on
    /// a transport failure the caller makes the stream again and retries.
    pub async fn agent_output_stream(
        &self,
        job: &str,
        epoch: u64,
        path: &str,
        size: u64,
        body: crate::agent_link::UploadStream,
    ) -> Result<JobOutput, ClientError> {
        let q = [("epoch", epoch.to_string()), ("path", path.to_string()), ("size", size.to_string())];
        let once = Body::Once(std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(body))), size);
        let resp = self.send_body(Method::PUT, &format!("agent/jobs/{}/outputs", enc(job)), &q, once).await?;
        let url = resp.url().to_string();
        resp.json().await.map_err(|e| ClientError::Protocol { url, message: e.to_string() })
    }

    /// Downloads an output of a job this one depends on.
    pub async fn agent_input(&self, job: &str, epoch: u64, output: &str) -> Result<reqwest::Response, ClientError> {
        let q = [("epoch", epoch.to_string())];
        self.send(Method::GET, &format!("agent/jobs/{}/inputs/{}", enc(job), enc(output)), &q, None).await
    }

    /// Sets a job-store value (`bmat store put`).
    pub async fn agent_store_put(&self, job: &str, name: &str, put: &AgentStorePut) -> Result<(), ClientError> {
        let path = format!("agent/jobs/{}/store/{}", enc(job), enc(name));
        let _: serde_json::Value = self.call(Method::PUT, &path, &[], Self::json(put)).await?;
        Ok(())
    }

    /// Reports the end of the job.
    pub async fn agent_finish(&self, job: &str, finish: &Finish) -> Result<(), ClientError> {
        let _: serde_json::Value =
            self.call(Method::POST, &format!("agent/jobs/{}/finish", enc(job)), &[], Self::json(finish)).await?;
        Ok(())
    }
}

/// Cluster-wide control switches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Control {
    /// When true, no new job is assigned and no worker requested.
    pub hold: bool,
}

fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 | 405 | 413 | 415 | 422 => ErrorCode::BadRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        503 => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

/// Percent-encodes one path segment.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
