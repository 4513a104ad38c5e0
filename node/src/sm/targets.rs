//! The targets table.

use bm_api::targets::{Target, TargetCreate};
use bm_api::ErrorCode;

use super::command::{not_found, reject};
use super::{valid_name, Outcome, Reply, State};

/// How many redirects a target name may go through.
const MAX_REDIRECTS: usize = 8;

impl State {
    /// Follows redirects from `name` to the target jobs really run on.
    pub fn resolve_target(&self, name: &str) -> Result<&Target, super::Rejection> {
        let mut t = match self.targets.get(name) {
            Some(t) => t,
            None => return not_found("target", name),
        };
        for _ in 0..MAX_REDIRECTS {
            match &t.redirect {
                None => return Ok(t),
                Some(next) => match self.targets.get(next) {
                    Some(n) => t = n,
                    None => return not_found("target", next),
                },
            }
        }
        reject(ErrorCode::Conflict, format!("target {name:?} redirects more than {MAX_REDIRECTS} times (a loop?)"))
    }

    pub(super) fn create_target(&mut self, id: String, spec: TargetCreate) -> Outcome {
        if !valid_name(&spec.name) {
            return reject(ErrorCode::BadRequest, format!("invalid target name {:?}", spec.name));
        }
        if self.targets.contains_key(&spec.name) {
            return reject(ErrorCode::Conflict, format!("target {:?} already exists", spec.name));
        }
        if let Some(r) = &spec.redirect {
            if !self.targets.contains_key(r) {
                return not_found("target", r);
            }
        }
        if let Some(p) = &spec.privilege {
            if !valid_name(p) {
                return reject(ErrorCode::BadRequest, format!("invalid privilege {p:?}"));
            }
        }
        let t = Target {
            id,
            name: spec.name.clone(),
            description: spec.description,
            redirect: spec.redirect,
            privilege: spec.privilege,
        };
        self.targets.insert(spec.name, t.clone());
        Ok(Reply::Target(t))
    }

    pub(super) fn set_redirect(&mut self, target: &str, redirect: Option<String>) -> Outcome {
        if !self.targets.contains_key(target) {
            return not_found("target", target);
        }
        if let Some(r) = &redirect {
            if !self.targets.contains_key(r) {
                return not_found("target", r);
            }
            // Follow the chain from the new redirect to its end: it must not
            // come back to `target` (a loop) nor exceed the redirect limit.
            // Existing chains have no loops, so this ends.
            let mut cur = Some(r.clone());
            let mut hops = 1;
            while let Some(c) = cur {
                if c == target {
                    return reject(ErrorCode::Conflict, format!("redirecting {target:?} to {r:?} makes a loop"));
                }
                cur = self.targets.get(&c).and_then(|t| t.redirect.clone());
                hops += 1;
                if hops > self.targets.len() + 1 {
                    break;
                }
            }
            if hops - 1 > MAX_REDIRECTS {
                return reject(
                    ErrorCode::Conflict,
                    format!("redirecting {target:?} to {r:?} makes a chain of more than {MAX_REDIRECTS} redirects"),
                );
            }
        }
        let t = self.targets.get_mut(target).expect("checked above");
        t.redirect = redirect;
        Ok(Reply::Target(t.clone()))
    }
}
