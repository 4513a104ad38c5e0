//! `bm local run` end to end: a throwaway cluster, the local factory's
//! sandboxes, live logs, outputs copied out, exit status by result.

use std::path::Path;
use std::process::{Command, Output};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn hello_copy(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("hello");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello"), &repo);
    repo
}

fn local_run(repo: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bm"))
        .args(["local", "run", "--repo", repo.to_str().unwrap(), "--output", out.to_str().unwrap()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run bm local run")
}

#[test]
fn the_hello_example_passes_and_its_outputs_are_copied_out() {
    hello_passes(&[]);
}

/// The same on a three-node cluster: outputs uploaded to one node are
/// replicated, the dependant job's inputs and the copies come from any.
#[test]
fn the_hello_example_passes_on_three_nodes() {
    hello_passes(&["--nodes", "3"]);
}

fn hello_passes(extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = hello_copy(tmp.path());
    let out = tmp.path().join("out");
    let o = local_run(&repo, &out, extra);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Live log lines are prefixed with the job name.
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("build") && l.contains("building local/hello")),
        "{stdout}"
    );
    assert!(stdout.contains("as build in /work/local/hello"), "jobs run as build in the clone: {stdout}");
    assert!(stdout.contains("pfexec gives uid 0"), "{stdout}");
    assert!(stdout.contains("all good: hello from bm"), "{stdout}");
    // The summary.
    assert!(stdout.lines().any(|l| l.starts_with("build") && l.contains("completed")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("test") && l.contains("completed")), "{stdout}");
    // Outputs: `=` rules matched, `%` log kept, `!` excluded.
    assert!(out.join("build/work/out/hello.tar.gz").is_file());
    assert!(out.join("build/work/out/hello.sha256.txt").is_file());
    assert!(out.join("build/tmp/build-main.log").is_file());
    assert!(!out.join("build/tmp/build-noise.log").exists(), "the ! rule must exclude it");
    let report = std::fs::read_to_string(out.join("test/tmp/test-report.txt")).unwrap();
    assert_eq!(report.trim(), "all good: hello from bm");
}

#[test]
fn a_failing_job_makes_local_run_exit_non_zero_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = hello_copy(tmp.path());
    std::fs::write(
        repo.join(".github/buildomat/jobs/broken.sh"),
        "#!/bin/bash\n#:\n#: name = \"broken\"\n#: variety = \"basic\"\n#:\necho about to fail\nexit 7\n",
    )
    .unwrap();
    let o = local_run(&repo, &tmp.path().join("out"), &["broken"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("failed: broken"), "{stderr}");
    assert!(stdout.contains("status 7"), "{stdout}");
}

#[test]
fn a_bad_job_file_is_refused_with_its_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = hello_copy(tmp.path());
    std::fs::write(repo.join(".github/buildomat/jobs/bad.sh"), "#!/bin/bash\n#:\n#: name = \"bad\"\n#: nmae = 1\n")
        .unwrap();
    let o = local_run(&repo, &tmp.path().join("out"), &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("bad.sh:"), "{stderr}");
}

#[test]
fn a_job_sees_every_environment_variable_the_spec_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("envrepo");
    std::fs::create_dir_all(repo.join(".github/buildomat/jobs")).unwrap();
    std::fs::write(
        repo.join(".github/buildomat/jobs/env.sh"),
        "#!/bin/bash\n#:\n#: name = \"env\"\n#: variety = \"basic\"\n#:\n\
         for v in BUILDOMAT_JOB_ID CI GITHUB_REPOSITORY GITHUB_SHA HOME USER LOGNAME PATH TZ LANG LC_ALL; do\n\
           echo \"$v=${!v}\"\ndone\necho \"PWD=$PWD\"\necho \"ID=$(id -u):$(id -un)\"\n",
    )
    .unwrap();
    let o = local_run(&repo, &tmp.path().join("out"), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let value = |k: &str| {
        stdout
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("env   "))
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} not printed: {stdout}"))
            .to_string()
    };
    assert_eq!(value("BUILDOMAT_JOB_ID").len(), 26, "a ULID");
    assert_eq!(value("CI"), "true");
    assert_eq!(value("GITHUB_REPOSITORY"), "local/envrepo");
    assert_eq!(value("GITHUB_SHA").len(), 40);
    assert_eq!(value("HOME"), "/home/build");
    assert_eq!(value("USER"), "build");
    assert_eq!(value("LOGNAME"), "build");
    assert!(value("PATH").split(':').any(|p| p == "/usr/bin"));
    assert_eq!(value("TZ"), "UTC");
    assert_eq!(value("LANG"), "en_US.UTF-8");
    assert_eq!(value("LC_ALL"), "en_US.UTF-8");
    assert_eq!(value("PWD"), "/work/local/envrepo");
    assert_eq!(value("ID"), "1000:build");
}

#[test]
fn bmat_reads_and_sets_the_store_starts_background_processes_and_names_the_factory() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("bmatrepo");
    std::fs::create_dir_all(repo.join(".github/buildomat/jobs")).unwrap();
    std::fs::write(
        repo.join(".github/buildomat/jobs/bmat.sh"),
        "#!/bin/bash\n#:\n#: name = \"bmat\"\n#: variety = \"basic\"\n#:\nset -o errexit\n\
         bmat store put greeting hello\n\
         echo -n s3cret | bmat store put -s token\n\
         echo \"got=$(bmat store get greeting) secret=$(bmat store get token)\"\n\
         bmat store get missing || echo \"missing-exit=$?\"\n\
         echo \"factory=$(bmat factory name) id=$(bmat factory id)\"\n\
         bmat process start ticker bash -c 'for i in 1 2 3; do echo tick-$i; sleep 0.1; done; exec sleep 1000'\n\
         bmat process start 'bad name' true || echo \"bad-name-exit=$?\"\n\
         bmat frob || echo \"usage-exit=$?\"\n\
         sleep 1\n",
    )
    .unwrap();
    let o = local_run(&repo, &tmp.path().join("out"), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let has = |s: &str| stdout.lines().any(|l| l.contains(s));
    assert!(has("got=hello secret=s3cret"), "{stdout}");
    assert!(has("missing-exit=1"), "{stdout}");
    assert!(has("bad-name-exit=1"), "{stdout}");
    assert!(has("usage-exit=2"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("factory=local-") && l.contains(" id=") && !l.ends_with("id=")),
        "{stdout}"
    );
    for i in 1..=3 {
        assert!(stdout.lines().any(|l| l.contains(" | ") && l.ends_with(&format!("tick-{i}"))), "tick-{i}: {stdout}");
    }
    assert!(has("background process ticker started"), "{stdout}");
    // The job ended while `sleep 1000` ran: it was killed with the job.
    assert!(has("background process ticker ended: signal: 9"), "{stdout}");
}

#[test]
fn a_rust_toolchain_the_sandbox_cannot_give_fails_the_job_saying_so() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("rustrepo");
    std::fs::create_dir_all(repo.join(".github/buildomat/jobs")).unwrap();
    std::fs::write(repo.join("rust-toolchain.toml"), "[toolchain]\nchannel = \"1.80.0\"\nprofile = \"minimal\"\n")
        .unwrap();
    std::fs::write(
        repo.join(".github/buildomat/jobs/rust.sh"),
        "#!/bin/bash\n#:\n#: name = \"rust\"\n#: variety = \"basic\"\n#: rust_toolchain = true\n#:\necho never\n",
    )
    .unwrap();
    let o = local_run(&repo, &tmp.path().join("out"), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    // The channel comes from rust-toolchain.toml, and the reason is in the log.
    assert!(stdout.contains("rust_toolchain = 1.80.0 was requested, but rustup is not available"), "{stdout}");
    assert!(!stdout.lines().any(|l| l.ends_with(" never")), "the job's own task must not run: {stdout}");
}
