//! Listing jobs reads the state a page at a time (`Node::read_paged`'s
//! page size, 1,024 jobs): a list that spans several pages still answers
//! every job once, newest first, and a filter finds a job pages away.

mod common;

use bm_api::jobs::{JobListQuery, JobState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_list_across_several_pages_is_whole_newest_first_and_filters_reach_the_oldest() {
    let (_tmp, _running, admin, _token) = common::in_process().await;
    const JOBS: usize = 2_300;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..JOBS).step_by(8) {
                let mut job = common::job(&format!("j{i}"), "default");
                if i == 0 {
                    job.tags.insert("first".into(), "yes".into());
                }
                admin.job_submit(&job).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let all = admin.jobs(&JobListQuery { limit: Some(JOBS + 10), ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), JOBS, "every job once");
    let mut ids: Vec<&String> = all.iter().map(|j| &j.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    ids.dedup();
    assert_eq!(ids.len(), JOBS);

    let newest = admin.jobs(&JobListQuery { limit: Some(5), ..Default::default() }).await.unwrap();
    assert_eq!(newest.iter().map(|j| &j.id).collect::<Vec<_>>(), all[..5].iter().map(|j| &j.id).collect::<Vec<_>>());

    let q = JobListQuery { tag: Some("first=yes".into()), ..Default::default() };
    let first = admin.jobs(&q).await.unwrap();
    assert_eq!(first.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["j0"], "found three pages away");

    let q = JobListQuery { state: Some(JobState::Running), ..Default::default() };
    assert!(admin.jobs(&q).await.unwrap().is_empty(), "no job runs: the whole list is read and nothing passes");
}
