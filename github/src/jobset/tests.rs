//! Job sets from real folders: stray files, shared names, dependencies,
//! cycles, disabled jobs, selection and the publish advice.

use std::fs;
use std::path::Path;

use super::*;
use crate::jobfile::JobFileErrorKind;

/// A job file named `name` with extra frontmatter lines (from line 5 on).
fn job(name: &str, extra: &str) -> String {
    let mut s = format!("#!/bin/bash\n#:\n#: name = \"{name}\"\n#: variety = \"basic\"\n");
    for l in extra.lines() {
        s.push_str(&format!("#: {l}\n"));
    }
    s.push_str("\necho hi\n");
    s
}

fn dep(key: &str, on: &str) -> String {
    format!("[dependencies.{key}]\njob = \"{on}\"\n")
}

/// A repository root holding the given job folder entries.
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(JOBS_DIR);
    fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
    root
}

fn load(files: &[(&str, &str)]) -> Result<LoadedJobSet, JobSetErrors> {
    load_repo(repo(files).path())
}

fn errors(files: &[(&str, &str)]) -> Vec<JobSetError> {
    match load(files) {
        Ok(l) => panic!("should be refused: {:?}", l.jobs.names()),
        Err(e) => e.errors,
    }
}

fn builder(files: &[(&str, &str)]) -> JobSetBuilder {
    let mut b = JobSetBuilder::new();
    for (path, text) in files {
        b.add_file(path, text);
    }
    b
}

#[test]
fn topological_order_and_paths() {
    let root = repo(&[
        ("build.sh", &job("build", "")),
        ("test.sh", &job("test", &dep("b", "build"))),
        ("publish.sh", &job("publish", &(dep("t", "test") + &dep("b", "build")))),
        ("lint.sh", &job("lint", "")),
    ]);
    let loaded = load_repo(root.path()).unwrap();
    assert_eq!(loaded.jobs.names(), ["build", "lint", "test", "publish"]);
    let path = &loaded.jobs.get("test").unwrap().path;
    assert!(path.ends_with(".github/buildomat/jobs/test.sh"), "{path}");
    assert!(path.starts_with(&root.path().display().to_string()), "{path}");
    assert!(loaded.warnings.is_empty());
}

#[test]
fn spec_dependency_example_resolves() {
    let loaded = load(&[
        ("other.sh", &job("the-other-job!", "output_rules = [\"/tmp/output.zip\"]")),
        ("mine.sh", &job("mine", &dep("otherjob", "the-other-job!"))),
    ])
    .unwrap();
    assert_eq!(loaded.jobs.names(), ["the-other-job!", "mine"]);
}

#[test]
fn no_jobs_folder_means_no_jobs() {
    let root = tempfile::tempdir().unwrap();
    assert!(load_repo(root.path()).unwrap().jobs.is_empty());
    let e = load_jobs_dir(&root.path().join("nope")).unwrap_err();
    assert!(matches!(e.errors[0].kind, JobSetErrorKind::Read(_)), "{e}");
}

#[test]
fn unexpected_readme_and_folder() {
    let root = repo(&[("build.sh", &job("build", "")), ("README.md", "hello\n")]);
    fs::create_dir(root.path().join(JOBS_DIR).join("sub")).unwrap();
    let e = load_repo(root.path()).unwrap_err();
    assert_eq!(e.errors.len(), 2, "{e}");
    assert_eq!(e.errors[0].kind, JobSetErrorKind::UnexpectedEntry { folder: false });
    assert!(e.errors[0].path.ends_with("jobs/README.md"));
    assert!(e.errors[0].to_string().contains("README.md: unexpected file in the jobs folder"), "{e}");
    assert_eq!(e.errors[1].kind, JobSetErrorKind::UnexpectedEntry { folder: true });
}

#[test]
fn not_utf8() {
    let root = repo(&[]);
    fs::write(root.path().join(JOBS_DIR).join("x.sh"), b"#!/bin/bash\n\xff\n").unwrap();
    let e = load_repo(root.path()).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn duplicate_names_name_both_files() {
    let e = errors(&[("a.sh", &job("build", "")), ("b.sh", &job("build", ""))]);
    assert_eq!(e.len(), 1);
    assert!(e[0].path.ends_with("b.sh"));
    assert_eq!(e[0].line, Some(3));
    let msg = e[0].to_string();
    assert!(msg.contains("a.sh:3") && msg.contains("b.sh:3: job name \"build\""), "{msg}");
}

#[test]
fn unknown_dependency() {
    let e = errors(&[("a.sh", &job("a", &format!("target = \"x\"\n{}", dep("up", "nope"))))]);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(7));
    assert_eq!(e[0].kind, JobSetErrorKind::UnknownDependency { dependency: "up".into(), job: "nope".into() });
    assert!(e[0].to_string().contains("a.sh:7: dependency \"up\" waits for job \"nope\""), "{}", e[0]);
}

#[test]
fn dependency_on_a_disabled_job() {
    let e = errors(&[("a.sh", &job("a", &dep("up", "old"))), ("old.sh", &job("old", "enable = false"))]);
    assert_eq!(e.len(), 1);
    assert!(matches!(&e[0].kind, JobSetErrorKind::DisabledDependency { job, .. } if job == "old"), "{}", e[0]);
    assert_eq!(e[0].line, Some(6));
}

#[test]
fn three_cycle() {
    let e = errors(&[
        ("a.sh", &job("a", &dep("x", "b"))),
        ("b.sh", &job("b", &dep("x", "c"))),
        ("c.sh", &job("c", &dep("x", "a"))),
        ("d.sh", &job("d", &dep("x", "a"))),
    ]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, JobSetErrorKind::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    assert!(e[0].path.ends_with("a.sh"));
    assert_eq!(e[0].line, Some(6));
    assert!(e[0].to_string().ends_with("a.sh:6: dependency cycle: a -> b -> c -> a"), "{}", e[0]);
}

#[test]
fn self_dependency_is_a_cycle() {
    let e = errors(&[("a.sh", &job("a", &dep("me", "a")))]);
    assert_eq!(e[0].kind, JobSetErrorKind::Cycle(vec!["a".into(), "a".into()]));
}

#[test]
fn all_errors_at_once_sorted_by_file() {
    let e = errors(&[
        ("a.sh", &job("a", "nmae = 1")),
        ("b.sh", &job("b", &dep("x", "zzz"))),
        ("c.txt", "x"),
        ("d.sh", "echo\n"),
    ]);
    let lines: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 4, "{lines:#?}");
    assert!(lines[0].ends_with("a.sh:5: unknown field `nmae`, expected one of `name`, `variety`, `enable`, `target`, `output_rules`, `dependencies`, `publish`, `rust_toolchain`, `skip_clone`, `access_repos`"), "{}", lines[0]);
    assert!(lines[1].contains("b.sh:6: dependency \"x\" waits for job \"zzz\""));
    assert!(lines[2].contains("c.txt: unexpected file"));
    assert!(lines[3].contains("d.sh:1: a job file must begin with an interpreter line"));
}

#[test]
fn broken_jobs_do_not_cascade() {
    let e = errors(&[("a.sh", &job("a", "target = 1")), ("b.sh", &job("b", &dep("x", "a")))]);
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn disabled_jobs_are_dropped_but_checked() {
    let loaded =
        load(&[("a.sh", &job("a", "")), ("old.sh", &job("old", "enable = false\nrust_toolchain = true"))]).unwrap();
    assert_eq!(loaded.jobs.names(), ["a"]);
    assert_eq!(loaded.jobs.disabled().len(), 1);
    assert_eq!(loaded.jobs.disabled()[0].name, "old");
    assert!(loaded.warnings.is_empty());

    // buildomat skips a disabled job before looking at its other keys, so
    // what would be an error becomes a warning.
    let loaded = load(&[("old.sh", &job("old", "enable = false\nnmae = 1\noutput_rules = [\"x\"]"))]).unwrap();
    assert!(loaded.jobs.is_empty());
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].line, Some(6));
    assert!(loaded.warnings[0].message.contains("disabled"), "{}", loaded.warnings[0]);

    // A bad variety is refused by buildomat even when disabled.
    let e = errors(&[("old.sh", "#!/bin/bash\n#: name = \"x\"\n#: variety = \"fancy\"\n#: enable = false\n")]);
    assert!(matches!(e[0].kind, JobSetErrorKind::JobFile(JobFileErrorKind::UnsupportedVariety(_))));

    // Disabled jobs do not take part in the uniqueness of names.
    assert!(load(&[("a.sh", &job("a", "")), ("b.sh", &job("a", "enable = false"))]).is_ok());
}

#[test]
fn too_many_jobs() {
    let files: Vec<(String, String)> =
        (0..=MAX_JOBS).map(|i| (format!("j{i:02}.sh"), job(&format!("j{i}"), ""))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert!(load(&refs[..MAX_JOBS]).is_ok());
    let e = errors(&refs);
    assert_eq!(e.len(), 1);
    assert!(matches!(e[0].kind, JobSetErrorKind::TooManyJobs { max: MAX_JOBS }));
}

#[test]
fn select_takes_transitive_dependencies() {
    let set = builder(&[
        ("a.sh", &job("a", "")),
        ("b.sh", &job("b", &dep("x", "a"))),
        ("c.sh", &job("c", &dep("x", "b"))),
        ("d.sh", &job("d", "")),
    ])
    .finish()
    .unwrap()
    .jobs;
    let names = |v: Vec<&JobFile>| v.into_iter().map(|j| j.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(set.select(&["c"]).unwrap()), ["a", "b", "c"]);
    assert_eq!(names(set.select(&["d", "b"]).unwrap()), ["a", "b", "d"]);
    assert!(set.select::<&str>(&[]).unwrap().is_empty());
    let e = set.select(&["c", "zz", "yy"]).unwrap_err();
    assert_eq!(e.unknown, ["zz", "yy"]);
    assert_eq!(e.to_string(), "no job named \"zz\", \"yy\"; the jobs are: a, b, c, d");
}

#[test]
fn partial_sets_allow_outside_dependencies() {
    let b = {
        let mut b = JobSetBuilder::partial();
        b.add_file("t.sh", &job("t", &dep("x", "elsewhere")));
        b
    };
    assert_eq!(b.finish().unwrap().jobs.names(), ["t"]);
}

#[test]
fn publish_advice() {
    let publish = "[[publish]]\nfrom_output = \"/work/out.tgz\"\nseries = \"s\"\nname = \"out.tgz\"";
    let warnings = |rules: &str| {
        let b = builder(&[("p.sh", &job("p", &format!("output_rules = [{rules}]\n{publish}")))]);
        b.finish().unwrap().warnings
    };
    assert!(warnings("\"=/work/out.tgz\"").is_empty());
    assert!(warnings("\"=/work/*.tgz\"").is_empty());
    assert!(warnings("\"=%/work/**/*.tgz\"").is_empty());
    let w = warnings("");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].line, Some(7));
    assert!(w[0].message.contains("no output rule uploads"), "{}", w[0]);
    assert!(warnings("\"/work/*\"").is_empty());
    assert!(warnings("\"=/work/*\", \"!/work/out.tgz\"")[0].message.contains("excluded"));

    let both = builder(&[
        ("p.sh", &job("p", &format!("output_rules = [\"=/work/out.tgz\"]\n{publish}"))),
        ("q.sh", &job("q", &format!("output_rules = [\"=/work/out.tgz\"]\n{publish}"))),
    ]);
    let w = both.finish().unwrap().warnings;
    assert_eq!(w.len(), 1);
    assert!(
        w[0].to_string()
            .starts_with("q.sh:7: warning: publish series \"s\" name \"out.tgz\" is also published by p.sh:7"),
        "{}",
        w[0]
    );
}

#[test]
fn the_example_repository_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
    let loaded = load_repo(&root).unwrap();
    assert_eq!(loaded.jobs.names(), ["build", "test"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn json_shape() {
    let set = builder(&[("a.sh", &job("a", "")), ("b.sh", &job("b", "enable = false"))]).finish().unwrap().jobs;
    let v = serde_json::to_value(&set).unwrap();
    assert_eq!(v["jobs"][0]["name"], "a");
    assert_eq!(v["disabled"][0]["name"], "b");
}

proptest::proptest! {
    /// Random dependency graphs: either a valid order where every job comes
    /// after its dependencies, or a cycle error.
    #[test]
    fn random_graphs(edges in proptest::collection::btree_set((0usize..6, 0usize..6), 0..12)) {
        let files: Vec<(String, String)> = (0..6)
            .map(|i| {
                let deps: String = edges.iter().filter(|(a, _)| *a == i).map(|(_, b)| dep(&format!("d{b}"), &format!("j{b}"))).collect();
                (format!("j{i}.sh"), job(&format!("j{i}"), &deps))
            })
            .collect();
        let mut b = JobSetBuilder::new();
        for (p, t) in &files {
            b.add_file(p, t);
        }
        match b.finish() {
            Ok(l) => {
                let names = l.jobs.names();
                for (a, c) in &edges {
                    let pos = |n: usize| names.iter().position(|x| *x == format!("j{n}")).unwrap();
                    proptest::prop_assert!(pos(*c) < pos(*a));
                }
            }
            Err(e) => {
                for err in &e.errors {
                    let is_cycle = matches!(err.kind, JobSetErrorKind::Cycle(_));
                    proptest::prop_assert!(is_cycle, "{}", err);
                }
            }
        }
    }
}

proptest::proptest! {
    /// Arbitrary folder contents never panic the set checks, and every
    /// error names one of the files.
    #[test]
    fn arbitrary_folders_never_panic(texts in proptest::collection::vec("(#!/bin/bash\n)?((#: ?|#|)[ -~]{0,30}\n){0,8}", 0..5)) {
        let mut b = JobSetBuilder::new();
        let paths: Vec<String> = (0..texts.len()).map(|i| format!("f{i}.sh")).collect();
        for (p, t) in paths.iter().zip(&texts) {
            b.add_file(p, t);
        }
        if let Err(e) = b.finish() {
            for err in &e.errors {
                proptest::prop_assert!(paths.contains(&err.path), "{}", err);
            }
        }
    }
}
