//! Users, their privileges, and who is calling.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user account. Tokens are never shown again after creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Unique id (ULID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Privileges held, e.g. `admin` or a target's required privilege.
    pub privileges: Vec<String>,
    /// When the account was made.
    pub created: DateTime<Utc>,
}

/// Request to create a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    /// Unique name: letters, digits, `-`, `_`, `.`, 1 to 64 characters.
    pub name: String,
    /// Privileges to grant at once.
    #[serde(default)]
    pub privileges: Vec<String>,
}

/// A created user and its bearer token, shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    /// The new user.
    pub user: User,
    /// Bearer token; only its hash is stored.
    pub token: String,
}

/// Who the caller is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// User id, or `admin` for the cluster's admin token.
    pub id: String,
    /// User name.
    pub name: String,
    /// Whether the caller has every privilege.
    pub admin: bool,
    /// Privileges held.
    pub privileges: Vec<String>,
}
