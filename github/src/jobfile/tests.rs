//! Job-file parsing against the spec's own examples and every bad input
//! the reference promises an error for, checking the reported line.

use super::*;

const PATH: &str = ".github/buildomat/jobs/build.sh";

/// A job file whose name is on line 3, variety on line 4, and whose
/// `extra` frontmatter lines start at line 5.
fn job(extra: &str) -> String {
    let mut s = String::from("#!/bin/bash\n#:\n#: name = \"build\"\n#: variety = \"basic\"\n");
    for l in extra.lines() {
        s.push_str("#: ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("#:\n\nuname -a\n");
    s
}

fn ok(text: &str) -> JobFile {
    match parse_job_file(PATH, text) {
        Ok(p) => p.job,
        Err(e) => panic!("{e:?}"),
    }
}

fn bad(text: &str) -> JobFileError {
    let e = JobFile::parse(PATH, text).expect_err("should be refused");
    assert!(e.to_string().starts_with(&format!("{PATH}:{}: ", e.line)), "{e}");
    e
}

#[test]
fn spec_minimal_job() {
    let text = "#!/bin/bash\n#:\n#: name = \"build\"\n#: variety = \"basic\"\n#:\nuname -a\n";
    let j = ok(text);
    assert_eq!(j.name, "build");
    assert_eq!(j.name_line, 3);
    assert_eq!(j.variety, Variety::Basic);
    assert!(j.enable);
    assert_eq!(j.target, None);
    assert!(j.output_rules.is_empty() && j.dependencies.is_empty() && j.publish.is_empty());
    assert_eq!(j.rust_toolchain, None);
    assert!(!j.skip_clone);
    assert!(j.access_repos.is_empty());
    assert_eq!(j.script, text);
}

#[test]
fn spec_dependencies_example() {
    let j = ok(&job("[dependencies.otherjob]\njob = \"the-other-job!\""));
    assert_eq!(j.dependencies.len(), 1);
    assert_eq!(j.dependencies["otherjob"], Dependency { job: "the-other-job!".into(), line: 6 });
}

#[test]
fn spec_output_rules_examples() {
    for rules in [
        "\"/tmp/test_output/*\",",
        "\"=/work/pkg/important.tar.gz\",\n\"=/work/pkg/important.sha256.txt\",",
        "\"%/var/svc/log/*.log\",",
        "\"/tmp/*\",\n\"!/tmp/*.jpg\",",
        "\"=%/tmp/*.log\",\n\"!/tmp/big-and-useless.log\",",
    ] {
        let j = ok(&job(&format!("output_rules = [\n{rules}\n]")));
        let want: Vec<String> = rules.lines().map(|l| l.trim_end_matches(',').trim_matches('"').to_string()).collect();
        assert_eq!(j.output_rules, want);
        assert_eq!(j.parsed_output_rules().len(), want.len());
    }
}

#[test]
fn spec_publish_example() {
    let j = ok(&job("output_rules = [\"=/work/important-packaged-files.tar.gz\"]\n[[publish]]\n\
         from_output = \"/work/important-packaged-files.tar.gz\"\nseries = \"packages\"\nname = \"files.tar.gz\""));
    assert_eq!(
        j.publish,
        [Publish {
            from_output: "/work/important-packaged-files.tar.gz".into(),
            series: "packages".into(),
            name: "files.tar.gz".into(),
            line: 7,
        }]
    );
}

#[test]
fn spec_rust_toolchain_both_forms() {
    assert_eq!(ok(&job("rust_toolchain = \"stable\"")).rust_toolchain, Some(RustToolchain::Channel("stable".into())));
    assert_eq!(
        ok(&job("rust_toolchain = \"nightly-2022-04-27\"")).rust_toolchain,
        Some(RustToolchain::Channel("nightly-2022-04-27".into()))
    );
    assert_eq!(ok(&job("rust_toolchain = true")).rust_toolchain, Some(RustToolchain::FromRepository));
    assert_eq!(ok(&job("rust_toolchain = false")).rust_toolchain, None);
    let e = bad(&job("rust_toolchain = 1"));
    assert_eq!(e.line, 5);
    assert!(e.to_string().contains("toolchain name"), "{e}");
    assert_eq!(bad(&job("\nrust_toolchain = \"\"")).kind, JobFileErrorKind::EmptyToolchain);
}

#[test]
fn spec_other_properties() {
    let j = ok(&job(
        "skip_clone = true\ntarget = \"helios-latest\"\nenable = false\naccess_repos = [\n\t\"oxidecomputer/clandestine-project\",\n\"oxidecomputer/secret-plans\",\n]",
    ));
    assert!(j.skip_clone);
    assert!(!j.enable);
    assert_eq!(j.target.as_deref(), Some("helios-latest"));
    assert_eq!(j.access_repos, ["oxidecomputer/clandestine-project", "oxidecomputer/secret-plans"]);
}

#[test]
fn comments_inside_the_block_and_tabs() {
    let j = ok("#!/bin/bash\n#:\n# a plain comment\n#:\tname = \"x\"\n#:variety=\"basic\"\necho\n");
    assert_eq!(j.name, "x");
    assert_eq!(j.name_line, 4);
}

#[test]
fn stray_frontmatter_lines_are_warnings() {
    let p =
        parse_job_file(PATH, "#!/bin/bash\n#: name = \"x\"\n#: variety = \"basic\"\n\n#: target = \"y\"\n").unwrap();
    assert_eq!(p.job.target, None);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, Some(5));
    assert!(p.warnings[0].message.contains("ended at line 4"), "{}", p.warnings[0]);
    let p = parse_job_file(PATH, "#!/bin/bash\n#: name = \"x\"\n#: variety = \"basic\"\necho\n#: a\n#: b\nls\n#: c\n")
        .unwrap();
    let w: Vec<String> = p.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with(&format!("{PATH}:5: warning: `#:` lines 5-6 are ignored")), "{}", w[0]);
    assert!(w[1].starts_with(&format!("{PATH}:8: warning: this `#:` line is ignored")), "{}", w[1]);
}

#[test]
fn unknown_key() {
    let e = bad(&job("nmae = \"x\""));
    assert_eq!(e.line, 5);
    assert!(
        matches!(&e.kind, JobFileErrorKind::Toml(m) if m.starts_with("unknown field `nmae`, expected one of")),
        "{e}"
    );
    assert!(e.to_string().starts_with(".github/buildomat/jobs/build.sh:5: unknown field `nmae`"), "{e}");
}

#[test]
fn misspelt_enable_gets_a_hint() {
    let e = bad(&job("\n\nenabled = false"));
    assert_eq!(e.line, 7);
    assert!(e.to_string().contains("use `enable = false`"), "{e}");
}

#[test]
fn wrong_types() {
    for (extra, line) in [
        ("enable = \"yes\"", 5),
        ("skip_clone = 1", 5),
        ("\noutput_rules = \"/tmp/*\"", 6),
        ("output_rules = [\n1,\n]", 6),
        ("target = 3", 5),
        ("access_repos = \"a/b\"", 5),
        ("[dependencies]\nx = \"y\"", 6),
        ("publish = 1", 5),
    ] {
        let e = bad(&job(extra));
        assert!(matches!(e.kind, JobFileErrorKind::Toml(_)), "{extra}: {e}");
        assert_eq!(e.line, line, "{extra}: {e}");
    }
    let e = bad("#!/bin/bash\n#: name = 7\n#: variety = \"basic\"\n");
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("invalid type"), "{e}");
}

#[test]
fn toml_syntax_error_line() {
    let e = bad(&job("\n\noutput_rules = [\"/a\" \"/b\"]"));
    assert_eq!(e.line, 7, "{e}");
}

#[test]
fn missing_name_and_variety() {
    let e = bad("#!/bin/bash\n#:\n#: variety = \"basic\"\n#:\necho\n");
    assert!(e.to_string().contains("missing field `name`"), "{e}");
    assert_eq!(e.line, 2);
    let e = bad("#!/bin/bash\n#: name = \"a\"\n");
    assert!(e.to_string().contains("missing field `variety`"), "{e}");
    assert_eq!(e.line, 2);
    assert_eq!(bad("#!/bin/bash\n#: name = \"\"\n#: variety = \"basic\"\n").kind, JobFileErrorKind::EmptyName);
}

#[test]
fn fancy_variety() {
    let e = bad("#!/bin/bash\n#:\n#: name = \"a\"\n#: variety = \"fancy\"\n");
    assert_eq!(e.line, 4);
    assert_eq!(e.kind, JobFileErrorKind::UnsupportedVariety("fancy".into()));
    assert!(e.to_string().contains("\"fancy\""), "{e}");
}

#[test]
fn no_interpreter_line() {
    for text in ["", "#: name = \"a\"\n#: variety = \"basic\"\n", "\n#!/bin/bash\n", "echo hi\n"] {
        let e = bad(text);
        assert_eq!((e.line, &e.kind), (1, &JobFileErrorKind::NoInterpreter), "{text:?}");
    }
}

#[test]
fn empty_frontmatter() {
    for (text, line) in [("#!/bin/bash\n", 2), ("#!/bin/bash\necho\n", 2), ("#!/bin/bash\n# hi\n#:\n#:\n", 3)] {
        let e = bad(text);
        assert_eq!((e.line, &e.kind), (line, &JobFileErrorKind::NoFrontmatter), "{text:?}");
    }
}

#[test]
fn bad_output_rule() {
    let e = bad(&job("output_rules = [\n\"/ok/*\",\n\"!=/x\",\n]"));
    assert_eq!(e.line, 7);
    assert!(matches!(&e.kind, JobFileErrorKind::OutputRule(m) if m.contains("cannot be combined")), "{e}");
    assert!(e.to_string().contains("\"!=/x\""), "{e}");
}

#[test]
fn every_checked_error_is_reported() {
    let errs = parse_job_file(PATH, &job("output_rules = [\"x\", \"y\"]\naccess_repos = [\"nope\"]")).unwrap_err();
    assert_eq!(errs.len(), 3);
    assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [5, 5, 6]);
}

#[test]
fn traversing_publish_name() {
    let e = bad(&job("[[publish]]\nfrom_output = \"/work/x\"\nseries = \"s\"\nname = \"../x\""));
    assert_eq!(e.line, 8);
    assert!(matches!(e.kind, JobFileErrorKind::PublishName { field: "name", .. }), "{e}");
    let e = bad(&job("[[publish]]\nfrom_output = \"/work/x\"\nseries = \"..\"\nname = \"x\""));
    assert_eq!(e.line, 7);
    let e = bad(&job("[[publish]]\nfrom_output = \"/work/*.tgz\"\nseries = \"s\"\nname = \"x\""));
    assert_eq!(e.line, 6);
    assert!(e.to_string().contains("wildcards"), "{e}");
}

#[test]
fn publish_needs_all_three_fields() {
    let e = bad(&job("[[publish]]\nfrom_output = \"/work/x\"\nname = \"x\""));
    assert!(e.to_string().contains("missing field `series`"), "{e}");
    let e = bad(&job("[[publish]]\nfrom_output = \"/work/x\"\nseries = \"s\"\nname = \"x\"\nextra = 1"));
    assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    assert_eq!(e.line, 9);
}

#[test]
fn dependency_tables_are_strict() {
    let e = bad(&job("[dependencies.a]\njob = \"x\"\ncopy = true"));
    assert!(e.to_string().contains("unknown field `copy`"), "{e}");
    assert_eq!(e.line, 7);
    let e = bad(&job("[dependencies.a]\n"));
    assert!(e.to_string().contains("missing field `job`"), "{e}");
    let e = bad(&job("\n[dependencies.\"..\"]\njob = \"x\""));
    assert!(matches!(e.kind, JobFileErrorKind::DependencyName { .. }), "{e}");
    assert_eq!(e.line, 6);
}

#[test]
fn json_shape() {
    let j = ok(&job("rust_toolchain = true\n[dependencies.o]\njob = \"a\""));
    let v = serde_json::to_value(&j).unwrap();
    assert_eq!(v["variety"], "basic");
    assert_eq!(v["rust_toolchain"], true);
    assert_eq!(v["dependencies"]["o"]["job"], "a");
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        let _ = parse_job_file(PATH, &text);
    }

    #[test]
    fn arbitrary_frontmatter_never_panics(lines in proptest::collection::vec("(#:|#| |)[ -~\\t]{0,40}", 0..12)) {
        let text = format!("#!/bin/bash\n{}\n", lines.join("\n"));
        match parse_job_file(PATH, &text) {
            Ok(_) => {}
            Err(errs) => {
                proptest::prop_assert!(!errs.is_empty());
                for e in errs {
                    proptest::prop_assert!(e.line >= 1 && e.line <= lines.len() + 2);
                }
            }
        }
    }
}
