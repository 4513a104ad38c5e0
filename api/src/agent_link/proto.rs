//! The agent link's messages: one request frame per QUIC stream, one answer
//! frame back, and raw file bytes after the request (an output upload) or
//! after the answer (an input download).
//!
//! Frames are JSON, the same encoding as the HTTP API's bodies: the agent
//! types use serde attributes (tagged enums, defaults) that a
//! non-self-describing codec cannot carry, and one encoding keeps the two
//! transports of the agent API answering alike.

use serde::{Deserialize, Serialize};

use crate::agent::{AgentStorePut, BootstrapRequest, Bootstrapped, Finish, Instruction};
use crate::error::ApiError;
use crate::jobs::JobOutput;

/// Largest request or answer frame (an events batch is far smaller; file
/// bytes travel outside frames).
pub const MAX_FRAME: usize = 16 << 20;

/// One call: the worker credential (none for `Hello` and `Bootstrap`) and what is asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    /// The worker credential from bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The call.
    pub call: AgentCall,
}

/// The calls of the agent API, the same as its HTTP paths under `/v1/agent`.
///
/// Adjacently tagged (`{"call": "events", "args": {…}}`): an internally
/// tagged enum makes serde buffer the whole call as a generic tree before
/// reading it, which for a batch of log lines cost more than the rest of
/// the frame's decoding (seen in a profile of 16 agents logging).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", content = "args", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentCall {
    /// Round-trip probe used to pick the nearest node; answers the node's id.
    Hello,
    /// Exchange of the bootstrap token.
    Bootstrap(BootstrapRequest),
    /// The next instruction, waiting up to `wait` seconds; also the heartbeat.
    Instruction {
        /// Seconds to wait for something other than `wait`.
        wait: u64,
    },
    /// The job started.
    Start {
        /// The job.
        job: String,
        /// The assignment's epoch.
        epoch: u64,
    },
    /// Log lines and control messages: exactly `size` bytes follow the
    /// frame, the batch packed as an [`crate::eventlog::EventLog`] in the
    /// binary codec. Packed, a line costs the node a copy; as JSON it cost
    /// an allocation per field and a parse of its time (a fifth of the
    /// machine in the 3-node log bench, both ends together).
    Events {
        /// The job.
        job: String,
        /// The assignment's epoch.
        epoch: u64,
        /// How many events this agent sent for this job before these (see
        /// [`crate::agent::EventsUpload::first`]).
        first: Option<u64>,
        /// Length of the packed batch that follows.
        size: u64,
    },
    /// One output file; exactly `size` raw bytes follow the frame.
    Output {
        /// The job.
        job: String,
        /// The assignment's epoch.
        epoch: u64,
        /// Absolute path of the file in the worker.
        path: String,
        /// Its length in bytes.
        size: u64,
    },
    /// An output of a job this one depends on; its bytes follow the answer.
    Input {
        /// The job.
        job: String,
        /// The assignment's epoch.
        epoch: u64,
        /// The output's id.
        output: String,
    },
    /// A job-store value the job sets.
    StorePut {
        /// The job.
        job: String,
        /// The key.
        name: String,
        /// Value, secrecy and epoch.
        put: AgentStorePut,
    },
    /// The end of the job.
    Finish {
        /// The job.
        job: String,
        /// Epoch and failure.
        finish: Finish,
    },
}

impl AgentCall {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            AgentCall::Hello => "hello",
            AgentCall::Bootstrap(_) => "bootstrap",
            AgentCall::Instruction { .. } => "instruction",
            AgentCall::Start { .. } => "start",
            AgentCall::Events { .. } => "events",
            AgentCall::Output { .. } => "output",
            AgentCall::Input { .. } => "input",
            AgentCall::StorePut { .. } => "store_put",
            AgentCall::Finish { .. } => "finish",
        }
    }
}

/// A successful answer, one variant per kind of call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "value", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentAnswer {
    /// To `Hello`: who answered.
    Hello {
        /// The node's id.
        node: u64,
    },
    /// To `Bootstrap`.
    Bootstrapped(Bootstrapped),
    /// To `Instruction`.
    Instruction(Instruction),
    /// To `Start`, `Events`, `StorePut` and `Finish`.
    Done,
    /// To `Output`: the stored output.
    Output(JobOutput),
    /// To `Input`: `size` raw bytes follow.
    Input {
        /// Length of the bytes that follow.
        size: u64,
    },
}

/// What travels back: an answer or the API's error (same codes as HTTP).
pub type AgentReply = Result<AgentAnswer, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        for call in [
            AgentCall::Hello,
            AgentCall::Output { job: "j".into(), epoch: 3, path: "/work/a".into(), size: 10 },
            AgentCall::Events { job: "j".into(), epoch: 3, first: Some(7), size: 100 },
        ] {
            let req = AgentRequest { token: Some("t".into()), call };
            let text = serde_json::to_vec(&req).unwrap();
            assert_eq!(serde_json::from_slice::<AgentRequest>(&text).unwrap(), req);
        }
        let reply: AgentReply = Err(ApiError::new(crate::ErrorCode::StaleEpoch, "old"));
        let text = serde_json::to_vec(&reply).unwrap();
        assert_eq!(serde_json::from_slice::<AgentReply>(&text).unwrap(), reply);
    }

    #[test]
    fn unknown_calls_are_refused_by_name() {
        let e = serde_json::from_slice::<AgentRequest>(br#"{"call":{"call":"format_disk","args":{}}}"#).unwrap_err();
        assert!(e.to_string().contains("format_disk"), "{e}");
    }
}
