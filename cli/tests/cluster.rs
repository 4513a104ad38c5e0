//! The highly available cluster with real `bm node` processes over real
//! QUIC on loopback: leader loss, partitions, a restarted node catching up
//! by snapshot, and membership changes under load. Every acknowledged
//! write must be on every node afterwards.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bm_api::jobs::JobListQuery;
use bm_node::config::RaftTuning;
use common::{default_target, write_load, Cluster};

/// Every job id each running node holds (a local read on each node).
async fn jobs_on(c: &Cluster, id: u64) -> BTreeSet<String> {
    let q = JobListQuery { limit: Some(10_000_000), ..Default::default() };
    c.client_of(id).jobs(&q).await.unwrap().into_iter().map(|j| j.id).collect()
}

async fn leader_last_log(c: &Cluster) -> u64 {
    let l = c.wait_leader(Duration::from_secs(30)).await;
    c.node_status(l).await.and_then(|s| s.last_log).unwrap_or(0)
}

/// Checks every acknowledged job is on every running node.
async fn check_all_present(c: &Cluster, acked: &[String]) {
    let last = leader_last_log(c).await;
    c.wait_applied(last, Duration::from_secs(60)).await;
    for id in c.procs.keys() {
        let have = jobs_on(c, *id).await;
        let missing: Vec<&String> = acked.iter().filter(|j| !have.contains(*j)).collect();
        assert!(missing.is_empty(), "node {id} lacks {} acknowledged jobs, e.g. {:?}", missing.len(), &missing[..1]);
    }
}

async fn setup(c: &Cluster) {
    let admin = c.client();
    default_target(&admin).await;
    // No factory here: keep the scheduler from asking for workers.
    admin.control_hold(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_loses_nothing_and_a_restarted_node_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(write_load(c.client(), 8, rx));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = c.wait_leader(Duration::from_secs(10)).await;
    c.kill(old);
    let new = c.wait_leader(Duration::from_secs(30)).await;
    assert_ne!(old, new);
    // Enough writes while it is down that it must be sent a snapshot.
    let before = leader_last_log(&c).await;
    while leader_last_log(&c).await < before + 3 * RaftTuning::frequent_snapshots().snapshot_every {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.spawn(old);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send(true).unwrap();
    let acked = load.await.unwrap();
    assert!(acked.len() > 100, "only {} writes acknowledged", acked.len());
    check_all_present(&c, &acked).await;
    let s = c.node_status(old).await.unwrap();
    assert!(s.snapshot.unwrap_or(0) > before, "node {old} did not install a snapshot: {s:?}");
    assert!(s.purged.is_some(), "node {old} log was not purged behind its snapshot: {s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_commit_and_the_majority_goes_on() {
    let c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    let old = c.wait_leader(Duration::from_secs(10)).await;
    let others: Vec<u64> = c.procs.keys().copied().filter(|id| *id != old).collect();
    c.net.partition(&[vec![old], others.clone()]);
    // The old leader cannot commit.
    let lone = c.client_of(old);
    let r = lone.job_submit(&bm_api::jobs::JobSubmit::script("minority", "default", "true")).await;
    assert!(r.is_err(), "the isolated leader acknowledged a write");
    // The majority elects a leader and commits.
    let majority = bm_api::Client::new(others.iter().map(|id| c.url(*id)).collect(), Some(c.token.clone()));
    let mut acked = Vec::new();
    for i in 0..20 {
        let j = majority.job_submit(&bm_api::jobs::JobSubmit::script(&format!("m{i}"), "default", "true")).await;
        acked.push(j.expect("the majority commits").id);
    }
    c.net.heal();
    check_all_present(&c, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_three_to_five_to_three_under_load() {
    let mut c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    c.new_node(4).await;
    c.new_node(5).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(write_load(c.client(), 4, rx));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let admin = c.client();
    for id in [4, 5] {
        let add = bm_api::cluster::MemberAdd { id, peer_addr: c.peer(id), api_url: c.url(id), learner: false };
        let s = admin.cluster_add(&add).await.unwrap();
        assert!(s.members.iter().any(|m| m.id == id && m.voter), "node {id} is not a voter: {s:?}");
    }
    let s = admin.cluster_status().await.unwrap();
    assert_eq!(s.members.iter().filter(|m| m.voter).count(), 5);
    // Remove two of the first three, the leader among them if it is one.
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let mut gone: Vec<u64> = vec![1, 2];
    if leader == 3 {
        gone = vec![3, 1];
    }
    for id in &gone {
        let s = admin.cluster_remove(*id).await.unwrap();
        assert!(!s.members.iter().any(|m| m.id == *id), "node {id} still a member: {s:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).unwrap();
    let acked = load.await.unwrap();
    for id in &gone {
        c.kill(*id);
    }
    let s = c.client().cluster_status().await.unwrap();
    assert_eq!(s.members.iter().filter(|m| m.voter).count(), 3, "{s:?}");
    assert!(acked.len() > 20, "only {} writes acknowledged", acked.len());
    check_all_present(&c, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_transfer_moves_the_leader() {
    let c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    let old = c.wait_leader(Duration::from_secs(10)).await;
    let to = c.procs.keys().copied().find(|id| *id != old).unwrap();
    let s = c.client().cluster_transfer_leader(to).await.unwrap();
    assert_eq!(s.leader, Some(to), "{s:?}");
    assert_eq!(c.wait_leader(Duration::from_secs(10)).await, to);
    // Writes go on through any node.
    c.client_of(old).job_submit(&bm_api::jobs::JobSubmit::script("after", "default", "true")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_take_writes_and_linearizable_reads() {
    let c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    for id in c.procs.keys().copied().filter(|id| *id != leader) {
        let node = c.client_of(id);
        let j = node.job_submit(&bm_api::jobs::JobSubmit::script("via-follower", "default", "true")).await.unwrap();
        // `job show` is a linearizable read: a follower waits for the
        // leader's read index, so the write it just forwarded is visible
        // from every node at once.
        for other in c.procs.keys() {
            assert_eq!(c.client_of(*other).job(&j.id).await.unwrap().id, j.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_just_submitted_elsewhere_is_never_missing_on_a_follower() {
    let c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let follower = c.procs.keys().copied().find(|id| *id != leader).unwrap();
    let (to_leader, on_follower) = (c.client_of(leader), c.client_of(follower));
    // A follower learns of a commit with the leader's next message, so a
    // read sent right after the acknowledgement usually gets there first.
    // Each read that could answer "no such job" must catch up instead.
    for i in 0..20 {
        let id = to_leader
            .job_submit(&bm_api::jobs::JobSubmit::script(&format!("j{i}"), "default", "true"))
            .await
            .unwrap()
            .id;
        match i % 4 {
            0 => {
                let page = on_follower.job_events(&id, 0, None).await.unwrap();
                assert_eq!(page.job_state, bm_api::jobs::JobState::Queued, "{page:?}");
            }
            1 => assert!(on_follower.job_outputs(&id).await.unwrap().is_empty()),
            2 => assert!(on_follower.job_store(&id).await.unwrap().is_empty()),
            _ => {
                let put = bm_api::jobs::StorePut { value: "v".into(), secret: false };
                assert_eq!(on_follower.job_store_put(&id, "k", &put).await.unwrap().value.as_deref(), Some("v"));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_for_a_while_rejoins_without_disturbing_the_leader() {
    let c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    // Let the first election settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let term = c.node_status(leader).await.unwrap().term;
    let away = c.procs.keys().copied().find(|id| *id != leader).unwrap();
    c.net.isolate(away);
    // Many election timeouts long: without pre-vote it would stand again
    // and again, raising its term.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let s = c.node_status(away).await.unwrap();
    assert_eq!(s.term, term, "the cut-off node raised its term: {s:?}");
    c.net.heal();
    let j = c.client_of(leader).job_submit(&bm_api::jobs::JobSubmit::script("after", "default", "true")).await;
    j.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = c.node_status(leader).await.unwrap();
    assert_eq!((s.role.as_str(), s.term), ("leader", term), "the leader was disturbed: {s:?}");
    let back = c.node_status(away).await.unwrap();
    assert_eq!((back.leader, back.term), (Some(leader), term), "{back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_one_follower_restores_the_whole_cluster() {
    let mut c = Cluster::start(3, RaftTuning::frequent_snapshots()).await;
    setup(&c).await;
    let admin = c.client();
    let mut acked = Vec::new();
    for i in 0..30 {
        acked.push(
            admin.job_submit(&bm_api::jobs::JobSubmit::script(&format!("b{i}"), "default", "true")).await.unwrap().id,
        );
    }
    let last = leader_last_log(&c).await;
    c.wait_applied(last, Duration::from_secs(30)).await;
    // Back up: stop a follower, copy its data, start it again.
    let leader = c.wait_leader(Duration::from_secs(10)).await;
    let f = c.procs.keys().copied().find(|id| *id != leader).unwrap();
    c.kill(f);
    let backup = c.path().join("backup");
    c.copy_data(f, &backup);
    c.spawn(f);
    // Lose every node's data; restore the backup on each.
    c.restore_everywhere(&backup);
    c.wait_leader(Duration::from_secs(30)).await;
    check_all_present(&c, &acked).await;
    // And it takes writes again.
    c.client().job_submit(&bm_api::jobs::JobSubmit::script("after", "default", "true")).await.unwrap();
}
