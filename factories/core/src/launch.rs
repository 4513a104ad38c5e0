//! How the agent inside a new worker is started: its arguments and
//! environment, computed once from the lease so that every provider tells
//! its agent the same thing, however it gets the command into the machine
//! (a process spawned in a sandbox, EC2 user-data, a lab machine's boot
//! ramdisk).

use bm_api::factories::WorkerLease;

/// Environment variable carrying the single-use bootstrap token. It goes in
/// the environment, not the arguments, so it does not show in process
/// listings.
pub const BOOTSTRAP_TOKEN_ENV: &str = "BM_BOOTSTRAP_TOKEN";

/// Environment variable carrying the cluster CA (PEM) an agent verifies
/// nodes against over QUIC; a machine made from a generic image has no CA
/// file of its own to point `--ca` at.
pub const CA_PEM_ENV: &str = "BM_AGENT_CA_PEM";

/// Where the agent is installed in a worker, unless the provider says
/// otherwise.
pub const DEFAULT_AGENT_PATH: &str = "/usr/local/bin/bm-agent";

/// The agent's command line, less the program: the provider knows where the
/// agent lives in its machines and may add arguments of its own (the local
/// provider adds `--run-as`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentLaunch {
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Variables to set in the agent's environment, in this order.
    pub env: Vec<(String, String)>,
}

impl AgentLaunch {
    /// The launch for `lease`: QUIC to the nearest node when the cluster
    /// gave QUIC addresses (with the CA in [`CA_PEM_ENV`]), else the HTTP
    /// API at `urls`; the bootstrap token in [`BOOTSTRAP_TOKEN_ENV`].
    pub fn for_lease(lease: &WorkerLease, urls: &[String]) -> Self {
        let mut env = vec![(BOOTSTRAP_TOKEN_ENV.to_string(), lease.bootstrap_token.clone())];
        let args = match &lease.agent_link {
            Some(link) if !link.addrs.is_empty() => {
                env.push((CA_PEM_ENV.to_string(), link.ca_pem.clone()));
                vec!["--quic".to_string(), link.addrs.join(",")]
            }
            _ => vec!["--url".to_string(), urls.join(",")],
        };
        Self { args, env }
    }

    /// The whole argument vector with `program` (the agent's path inside
    /// the machine) first, ready to exec.
    pub fn argv(&self, program: &str) -> Vec<String> {
        std::iter::once(program.to_string()).chain(self.args.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use bm_api::factories::AgentLinkInfo;

    use super::*;

    fn lease(link: Option<AgentLinkInfo>) -> WorkerLease {
        WorkerLease { worker: "W1".into(), target: "default".into(), bootstrap_token: "tok".into(), agent_link: link }
    }

    fn urls() -> Vec<String> {
        vec!["http://a:1".into(), "http://b:2".into()]
    }

    #[test]
    fn quic_addresses_are_used_with_the_ca_in_the_environment() {
        let link = AgentLinkInfo { addrs: vec!["a:7".into(), "b:7".into()], ca_pem: "PEM".into() };
        let l = AgentLaunch::for_lease(&lease(Some(link)), &urls());
        assert_eq!(l.args, ["--quic", "a:7,b:7"]);
        assert_eq!(
            l.env,
            [(BOOTSTRAP_TOKEN_ENV.to_string(), "tok".to_string()), (CA_PEM_ENV.to_string(), "PEM".to_string())]
        );
    }

    #[test]
    fn without_a_quic_endpoint_the_agent_uses_every_node_url() {
        let l = AgentLaunch::for_lease(&lease(None), &urls());
        assert_eq!(l.args, ["--url", "http://a:1,http://b:2"]);
        assert_eq!(l.env, [(BOOTSTRAP_TOKEN_ENV.to_string(), "tok".to_string())]);
    }

    #[test]
    fn an_agent_link_without_addresses_falls_back_to_the_urls() {
        let link = AgentLinkInfo { addrs: vec![], ca_pem: "PEM".into() };
        let l = AgentLaunch::for_lease(&lease(Some(link)), &urls());
        assert_eq!(l.args, ["--url", "http://a:1,http://b:2"]);
        assert!(!l.env.iter().any(|(k, _)| k == CA_PEM_ENV), "no CA without QUIC: {:?}", l.env);
    }

    #[test]
    fn argv_puts_the_program_first() {
        let l = AgentLaunch::for_lease(&lease(None), &urls());
        assert_eq!(l.argv(DEFAULT_AGENT_PATH), [DEFAULT_AGENT_PATH, "--url", "http://a:1,http://b:2"]);
    }
}
