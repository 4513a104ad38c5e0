//! Turns the global options and the selected profile into an API client,
//! so every command reaches the cluster the same way.

use anyhow::{bail, Result};
use bm_api::Client;

use crate::config;
use crate::GlobalArgs;

/// Builds the client for a command.
///
/// URLs come from `--url` (or `BM_URL`) when given, else from the profile;
/// the token from `--token` (or `BM_TOKEN`) when given, else from the
/// profile. With `--url` the profile is optional unless named explicitly.
pub fn client(global: &GlobalArgs) -> Result<Client> {
    let urls: Vec<String> = global.url.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
    let (file, cfg) = config::load()?;
    let explicit = global.profile.as_deref();

    let (urls, token) = if urls.is_empty() {
        let (name, profile) = cfg.select(explicit, &file)?;
        if profile.urls.is_empty() {
            bail!("profile {name:?} in {} has no urls", file.display());
        }
        (profile.urls.clone(), global.token.clone().or_else(|| profile.token.clone()))
    } else {
        let profile_token = match cfg.select(explicit, &file) {
            Ok((_, p)) => p.token.clone(),
            Err(e) if explicit.is_some() => return Err(e),
            Err(_) => None,
        };
        (urls, global.token.clone().or(profile_token))
    };
    tracing::debug!(?urls, token = token.is_some(), "connecting");
    Ok(Client::new(urls, token))
}

/// The bearer token the global options and profile give, if any.
pub fn token(global: &GlobalArgs) -> Result<Option<String>> {
    if global.token.is_some() {
        return Ok(global.token.clone());
    }
    let (file, cfg) = config::load()?;
    Ok(cfg.select(global.profile.as_deref(), &file).ok().and_then(|(_, p)| p.token.clone()))
}
