//! Bearer tokens: how they are made, stored (hashed) and checked.

use bm_api::{ApiError, ErrorCode, ADMIN};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::sm::{Principal, State};

/// A fresh random token: 32 bytes, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// What the state stores instead of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The holder of the cluster admin token.
    Admin,
    /// A user, by id.
    User(String),
    /// A factory, by id.
    Factory(String),
    /// An agent, by worker id.
    Worker(String),
}

impl Caller {
    /// The owner id recorded on what a user-like caller creates.
    pub fn owner(&self) -> Result<&str, ApiError> {
        match self {
            Caller::Admin => Ok(ADMIN),
            Caller::User(id) => Ok(id),
            _ => Err(ApiError::new(ErrorCode::Forbidden, "this endpoint is for users")),
        }
    }

    /// Requires a user or admin holding `privilege`.
    pub fn require(&self, state: &State, privilege: &str) -> Result<(), ApiError> {
        let owner = self.owner()?;
        if state.has_privilege(owner, privilege) {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Forbidden, format!("this needs the privilege {privilege:?}")))
        }
    }

    /// Requires a factory; returns its id.
    pub fn factory(&self) -> Result<&str, ApiError> {
        match self {
            Caller::Factory(id) => Ok(id),
            _ => Err(ApiError::new(ErrorCode::Forbidden, "this endpoint is for factories")),
        }
    }
}

/// Resolves an `Authorization` header against the state and the admin token hash.
pub fn authenticate(header: Option<&str>, admin_hash: &str, state: &State) -> Result<Caller, ApiError> {
    let Some(h) = header else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "missing Authorization: Bearer token"));
    };
    let Some(token) = h.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "Authorization header must be 'Bearer TOKEN'"));
    };
    let hash = hash_token(token);
    if constant_time_eq(hash.as_bytes(), admin_hash.as_bytes()) {
        return Ok(Caller::Admin);
    }
    match state.principal(&hash) {
        Some(Principal::User(id)) => Ok(Caller::User(id.clone())),
        Some(Principal::Factory(id)) => Ok(Caller::Factory(id.clone())),
        Some(Principal::Worker(id)) => Ok(Caller::Worker(id.clone())),
        None => Err(ApiError::new(ErrorCode::Unauthorized, "unknown or revoked token")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the admin token file, creating it with a fresh token (mode 0600) if missing.
pub fn load_or_create_admin_token(path: &std::path::Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => anyhow::bail!("admin token file {} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let token = new_token();
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            writeln!(f, "{token}")?;
            Ok(token)
        }
        Err(e) => anyhow::bail!("cannot read admin token file {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let s = State::default();
        let admin = hash_token("secret");
        assert_eq!(authenticate(Some("Bearer secret"), &admin, &s).unwrap(), Caller::Admin);
        assert_eq!(authenticate(None, &admin, &s).unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(authenticate(Some("Basic x"), &admin, &s).unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(authenticate(Some("Bearer nope"), &admin, &s).unwrap_err().code, ErrorCode::Unauthorized);
    }
}
