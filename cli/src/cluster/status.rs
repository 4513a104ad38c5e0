//! `bm cluster status`: one row per member.

use std::time::Duration;

use anyhow::Result;
use bm_api::cluster::ClusterStatus;
use bm_api::Client;

use super::StatusArgs;
use crate::output::{print_json, Table};

/// Prints the status once, or every second with `--watch`.
pub async fn run(client: &Client, a: StatusArgs) -> Result<()> {
    loop {
        let s = client.cluster_status().await?;
        if a.watch && !a.json {
            // Clear the screen and go home, like watch(1).
            print!("\x1b[2J\x1b[H");
        }
        if a.json {
            print_json(&s)?;
        } else {
            print(&s)?;
        }
        if !a.watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The table form.
pub fn print(s: &ClusterStatus) -> Result<()> {
    let mut t = Table::new(&[
        "ID",
        "ROLE",
        "VOTER",
        "TERM",
        "LAST_LOG",
        "COMMITTED",
        "APPLIED",
        "SNAPSHOT",
        "LAG",
        "RTT_MS",
        "AGENTS",
        "PEER",
        "API",
        "HEALTH",
    ]);
    for m in &s.members {
        let st = m.status.as_ref();
        t.row(vec![
            m.id.to_string(),
            st.map(|s| s.role.clone()).unwrap_or_else(|| "?".into()),
            if m.voter { "yes" } else { "no" }.into(),
            st.map(|s| s.term.to_string()).unwrap_or_else(|| "-".into()),
            opt(st.and_then(|s| s.last_log)),
            opt(st.and_then(|s| s.committed)),
            opt(st.and_then(|s| s.applied)),
            opt(st.and_then(|s| s.snapshot)),
            opt(m.lag),
            m.rtt_us.map(|r| format!("{:.1}", r as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            st.map(|s| s.agents.to_string()).unwrap_or_else(|| "-".into()),
            m.peer_addr.clone(),
            m.api_url.clone(),
            m.health.clone(),
        ]);
    }
    t.print()?;
    crate::outln!(
        "leader: {}  term: {}  (answered by node {})",
        s.leader.map(|l| l.to_string()).unwrap_or_else(|| "none".into()),
        s.term,
        s.answered_by
    );
    Ok(())
}
