//! Where a dependency's outputs land in a dependent job: the spec puts the
//! upstream file `/tmp/output.zip` of dependency `otherjob` at
//! `/input/otherjob/tmp/output.zip`. Names and paths come from other jobs,
//! so every one is checked and no write can land outside the inputs root.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

/// Why an input cannot be placed.
#[derive(Debug, Error)]
pub enum InputPathError {
    /// The dependency name cannot be a single directory name.
    #[error("dependency name {name:?} cannot be used as a directory under the inputs: {reason}")]
    BadDependencyName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The output path is not a plain absolute path.
    #[error("input file {path:?} of dependency {dependency:?} is refused: {reason}")]
    BadPath {
        /// The dependency it came from.
        dependency: String,
        /// The output path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something already on disk (a symlink, a file where a directory
    /// should be, or the file itself) is in the way; writing through it
    /// could escape the inputs root or clobber another input.
    #[error("{path}: already exists as something an input cannot be written through")]
    InTheWay {
        /// The host path in the way.
        path: PathBuf,
    },
    /// Creating a directory or the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The host path being created.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The host path for the output `worker_path` (e.g. `/tmp/output.zip`) of
/// the dependency `dependency`: `inputs_root/dependency/tmp/output.zip`.
pub fn input_destination(inputs_root: &Path, dependency: &str, worker_path: &str) -> Result<PathBuf, InputPathError> {
    let mut dest = inputs_root.join(check_dependency(dependency)?);
    for c in check_path(dependency, worker_path)? {
        dest.push(c);
    }
    Ok(dest)
}

/// [`input_destination`] for every output of one dependency, failing on the
/// first bad path so that nothing of a suspicious dependency is written.
pub fn input_destinations<'a>(
    inputs_root: &Path,
    dependency: &str,
    worker_paths: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<PathBuf>, InputPathError> {
    worker_paths.into_iter().map(|p| input_destination(inputs_root, dependency, p)).collect()
}

/// Creates the file for an input, making its directories one at a time and
/// refusing to pass through anything but a real directory, and refusing a
/// file that already exists (including a symlink there). The inputs root
/// itself is created if missing.
pub fn create_input_file(
    inputs_root: &Path,
    dependency: &str,
    worker_path: &str,
) -> Result<(PathBuf, File), InputPathError> {
    let dest = input_destination(inputs_root, dependency, worker_path)?;
    fs::create_dir_all(inputs_root).map_err(|source| InputPathError::Io { path: inputs_root.to_path_buf(), source })?;
    let mut dir = inputs_root.to_path_buf();
    let below: Vec<Component> = dest.strip_prefix(inputs_root).expect("built from inputs_root").components().collect();
    let (_file, dirs) = below.split_last().expect("a dependency and at least one component");
    for c in dirs {
        dir.push(c);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(InputPathError::InTheWay { path: dir }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|source| InputPathError::Io { path: dir.clone(), source })?
            }
            Err(source) => return Err(InputPathError::Io { path: dir, source }),
        }
    }
    // create_new is O_CREAT|O_EXCL: it never follows a symlink at the end.
    match OpenOptions::new().write(true).create_new(true).open(&dest) {
        Ok(f) => Ok((dest, f)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(InputPathError::InTheWay { path: dest }),
        Err(source) => Err(InputPathError::Io { path: dest, source }),
    }
}

fn check_dependency(name: &str) -> Result<&str, InputPathError> {
    let bad = |reason| Err(InputPathError::BadDependencyName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it contains a path separator");
    }
    if name.contains('\0') {
        return bad("it contains a NUL byte");
    }
    Ok(name)
}

fn check_path<'a>(dependency: &str, path: &'a str) -> Result<Vec<&'a str>, InputPathError> {
    let bad =
        |reason| Err(InputPathError::BadPath { dependency: dependency.to_string(), path: path.to_string(), reason });
    if !path.starts_with('/') {
        return bad("it is not an absolute path");
    }
    if path.contains('\0') {
        return bad("it contains a NUL byte");
    }
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if components.iter().any(|c| *c == "." || *c == "..") {
        return bad("it contains a '.' or '..' component");
    }
    if components.is_empty() {
        return bad("it names no file");
    }
    Ok(components)
}

#[cfg(test)]
mod tests {
    use super::{create_input_file, input_destination, input_destinations, InputPathError};
    use std::io::Write;
    use std::path::Path;

    #[test]
    fn the_spec_example() {
        assert_eq!(
            input_destination(Path::new("/input"), "otherjob", "/tmp/output.zip").unwrap(),
            Path::new("/input/otherjob/tmp/output.zip")
        );
        assert_eq!(
            input_destinations(Path::new("/input"), "b", ["/a", "/x//y"]).unwrap(),
            [Path::new("/input/b/a"), Path::new("/input/b/x/y")]
        );
    }

    #[test]
    fn traversal_and_odd_paths_are_refused() {
        let root = Path::new("/input");
        for p in ["/tmp/../../etc/passwd", "/..", "/tmp/./x", "tmp/x", "", "/", "//", "/tmp/x\0"] {
            let err = input_destination(root, "dep", p).unwrap_err();
            assert!(matches!(err, InputPathError::BadPath { .. }), "{p:?}: {err}");
        }
        for d in ["", ".", "..", "a/b", "..\\x", "a\0"] {
            let err = input_destination(root, d, "/tmp/x").unwrap_err();
            assert!(matches!(err, InputPathError::BadDependencyName { .. }), "{d:?}: {err}");
        }
        assert!(input_destinations(root, "dep", ["/ok", "/../no"]).is_err());
        let msg = input_destination(root, "dep", "/a/../b").unwrap_err().to_string();
        assert!(msg.contains("\"/a/../b\"") && msg.contains("'..'"), "{msg}");
    }

    #[test]
    fn names_with_dots_that_are_not_traversal_are_fine() {
        let root = Path::new("/input");
        assert_eq!(input_destination(root, "a..b", "/x/..y/.z").unwrap(), Path::new("/input/a..b/x/..y/.z"));
    }

    #[test]
    fn creates_the_file_and_its_directories() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("input");
        let (path, mut f) = create_input_file(&root, "otherjob", "/tmp/output.zip").unwrap();
        f.write_all(b"zip").unwrap();
        assert_eq!(path, root.join("otherjob/tmp/output.zip"));
        assert_eq!(std::fs::read(&path).unwrap(), b"zip");
        let again = create_input_file(&root, "otherjob", "/tmp/output.zip").unwrap_err();
        assert!(matches!(again, InputPathError::InTheWay { .. }), "{again}");
    }

    #[cfg(unix)]
    #[test]
    fn never_writes_through_a_symlink() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let root = t.path().join("input");
        std::fs::create_dir_all(root.join("dep")).unwrap();
        symlink(&outside, root.join("dep/tmp")).unwrap();
        let err = create_input_file(&root, "dep", "/tmp/x").unwrap_err();
        assert!(matches!(err, InputPathError::InTheWay { .. }), "{err}");
        symlink(outside.join("f"), root.join("dep/f")).unwrap();
        let err = create_input_file(&root, "dep", "/f").unwrap_err();
        assert!(matches!(err, InputPathError::InTheWay { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
