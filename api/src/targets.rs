//! Targets: the named environments a job asks for.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A target jobs can name. A target may redirect to another (so an old name
/// keeps working) and may require a privilege of the submitter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// Unique id (ULID).
    pub id: String,
    /// Unique name jobs use.
    pub name: String,
    /// For people.
    pub description: String,
    /// Another target's name that jobs for this one actually run on.
    pub redirect: Option<String>,
    /// Privilege a submitter must hold to use this target.
    pub privilege: Option<String>,
}

/// Request to create a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetCreate {
    /// Unique name.
    pub name: String,
    /// For people.
    #[serde(default)]
    pub description: String,
    /// Redirect to this target's name.
    #[serde(default)]
    pub redirect: Option<String>,
    /// Required privilege.
    #[serde(default)]
    pub privilege: Option<String>,
}

impl TargetCreate {
    /// A plain target: no redirect, no privilege.
    pub fn named(name: &str) -> Self {
        TargetCreate { name: name.into(), description: String::new(), redirect: None, privilege: None }
    }
}

/// Request to change a target's redirect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRedirect {
    /// New redirect, or none to clear it.
    pub redirect: Option<String>,
}
