//! What `bmat` asks the agent and what it answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One request, a JSON line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The value of a job-store key.
    StoreGet {
        /// The key.
        name: String,
    },
    /// Sets a job-store key (committed by the cluster before the answer).
    StorePut {
        /// The key.
        name: String,
        /// The value.
        value: String,
        /// Hidden from users (shown only to jobs).
        secret: bool,
    },
    /// Starts a background process.
    ProcessStart {
        /// Its name, for the log stream `bg.NAME`.
        name: String,
        /// Program and arguments.
        argv: Vec<String>,
        /// Working directory (the caller's).
        cwd: String,
        /// Environment (the caller's).
        env: BTreeMap<String, String>,
    },
    /// The factory's name.
    FactoryName,
    /// The factory's id.
    FactoryId,
}

/// The answer: a value to print, or an error to report (exit status 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Success, with what to print (if anything).
    Ok(Option<String>),
    /// Failure, with the message.
    Err(String),
}
