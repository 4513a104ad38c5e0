//! The users table.

use bm_api::users::User;
use bm_api::{ErrorCode, ADMIN};
use serde::{Deserialize, Serialize};

use super::command::{not_found, reject};
use super::{valid_name, Outcome, Principal, Reply, State, Time};

/// A user and the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The user as the API shows it.
    pub user: User,
    /// sha256 of the bearer token.
    pub token_hash: String,
}

impl State {
    /// Finds a user by id or name.
    pub fn user(&self, id_or_name: &str) -> Option<&UserRecord> {
        self.users.get(id_or_name).or_else(|| self.users.values().find(|u| u.user.name == id_or_name))
    }

    /// Whether `owner` (a user id, or `admin` for the cluster admin) holds `privilege`.
    pub fn has_privilege(&self, owner: &str, privilege: &str) -> bool {
        if owner == ADMIN {
            return true;
        }
        self.users.get(owner).is_some_and(|u| u.user.privileges.iter().any(|p| p == ADMIN || p == privilege))
    }

    pub(super) fn create_user(
        &mut self,
        id: String,
        name: String,
        privileges: Vec<String>,
        token_hash: String,
        time: Time,
    ) -> Outcome {
        if !valid_name(&name) || name == ADMIN {
            return reject(
                ErrorCode::BadRequest,
                format!("invalid user name {name:?}: use 1-64 letters, digits, '.', '_' or '-' (and not \"admin\")"),
            );
        }
        if let Some(p) = privileges.iter().find(|p| !valid_name(p)) {
            return reject(ErrorCode::BadRequest, format!("invalid privilege {p:?}"));
        }
        if self.users.contains_key(&id) || self.user(&name).is_some() {
            return reject(ErrorCode::Conflict, format!("a user named {name:?} already exists"));
        }
        if self.tokens.contains_key(&token_hash) {
            return reject(ErrorCode::Conflict, "token already in use");
        }
        let mut privileges = privileges;
        privileges.sort();
        privileges.dedup();
        let user = User { id: id.clone(), name, privileges, created: time };
        self.tokens.insert(token_hash.clone(), Principal::User(id.clone()));
        self.users.insert(id, UserRecord { user: user.clone(), token_hash });
        Ok(Reply::User(user))
    }

    pub(super) fn set_privilege(&mut self, user: &str, privilege: String, grant: bool) -> Outcome {
        if !valid_name(&privilege) {
            return reject(ErrorCode::BadRequest, format!("invalid privilege {privilege:?}"));
        }
        let Some(id) = self.user(user).map(|u| u.user.id.clone()) else { return not_found("user", user) };
        let rec = self.users.get_mut(&id).expect("found above");
        let privs = &mut rec.user.privileges;
        if grant {
            if !privs.contains(&privilege) {
                privs.push(privilege);
                privs.sort();
            }
        } else {
            privs.retain(|p| *p != privilege);
        }
        Ok(Reply::User(rec.user.clone()))
    }
}
