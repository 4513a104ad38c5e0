//! The factories table.

use bm_api::factories::Factory;
use bm_api::ErrorCode;
use serde::{Deserialize, Serialize};

use super::command::{not_found, reject};
use super::{valid_name, Outcome, Principal, Reply, State, Time};

/// A factory and the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryRecord {
    /// As the API shows it.
    pub factory: Factory,
    /// sha256 of its bearer token.
    pub token_hash: String,
}

impl State {
    /// Finds a factory by id or name.
    pub fn factory(&self, id_or_name: &str) -> Option<&FactoryRecord> {
        self.factories.get(id_or_name).or_else(|| self.factories.values().find(|f| f.factory.name == id_or_name))
    }

    pub(super) fn create_factory(&mut self, id: String, name: String, token_hash: String, time: Time) -> Outcome {
        if !valid_name(&name) {
            return reject(ErrorCode::BadRequest, format!("invalid factory name {name:?}"));
        }
        if self.factory(&name).is_some() || self.factories.contains_key(&id) {
            return reject(ErrorCode::Conflict, format!("factory {name:?} already exists"));
        }
        if self.tokens.contains_key(&token_hash) {
            return reject(ErrorCode::Conflict, "token already in use");
        }
        let factory = Factory { id: id.clone(), name, enabled: true, created: time };
        self.tokens.insert(token_hash.clone(), Principal::Factory(id.clone()));
        self.factories.insert(id, FactoryRecord { factory: factory.clone(), token_hash });
        Ok(Reply::Factory(factory))
    }

    pub(super) fn set_factory_enabled(&mut self, factory: &str, enabled: bool) -> Outcome {
        let Some(id) = self.factory(factory).map(|f| f.factory.id.clone()) else {
            return not_found("factory", factory);
        };
        let f = self.factories.get_mut(&id).expect("found above");
        f.factory.enabled = enabled;
        Ok(Reply::Factory(f.factory.clone()))
    }
}
