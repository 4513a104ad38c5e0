//! Helpers for tests that run real `bm-node` processes, or a node in the
//! test's own process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `bm-node` process with its own data directory.
pub struct NodeProc {
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub url: String,
    pub port: u16,
}

impl NodeProc {
    /// Starts a node in `dir` on a free port.
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, 0)
    }

    /// Starts a node in `dir` on `port` (0: any), writing its config first.
    pub fn start_on(dir: &Path, port: u16) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = dir.join("node.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = {:?}\nlisten_http = \"127.0.0.1:{port}\"\nadmin_token_file = {:?}\n",
                dir.join("data"),
                dir.join("admin-token")
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bm-node"))
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bm-node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read the listening line");
        let url = line.rsplit(' ').next().expect("url in the listening line").trim().to_string();
        assert!(url.starts_with("http://"), "bm-node said {line:?}");
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        NodeProc { dir: dir.to_path_buf(), child: Some(child), url, port }
    }

    /// The cluster admin token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.join("admin-token")).unwrap().trim().to_string()
    }

    /// An admin API client.
    pub fn admin(&self) -> bm_api::Client {
        bm_api::Client::new(vec![self.url.clone()], Some(self.admin_token()))
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts the node again on the same data and port.
    pub fn restart(&mut self) {
        self.kill9();
        let mut last = None;
        for _ in 0..50 {
            // The old socket may linger a moment.
            match std::panic::catch_unwind(|| NodeProc::start_on(&self.dir, self.port)) {
                Ok(n) => {
                    *self = n;
                    return;
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::panic::resume_unwind(last.unwrap());
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A one-task job for `target`.
pub fn job(name: &str, target: &str) -> bm_api::jobs::JobSubmit {
    bm_api::jobs::JobSubmit::script(name, target, "echo hello")
}

/// A node started in this process on a temporary directory, with the
/// `default` target: its folder (dropped last), the running node, an admin
/// client and the admin token.
pub async fn in_process() -> (tempfile::TempDir, bm_node::Running, bm_api::Client, String) {
    let tmp = tempfile::tempdir().unwrap();
    let running =
        bm_node::start(bm_node::NodeConfig::in_dir(tmp.path(), "127.0.0.1:0".parse().unwrap())).await.unwrap();
    let token = std::fs::read_to_string(tmp.path().join("admin-token")).unwrap().trim().to_string();
    let admin = bm_api::Client::new(vec![running.url()], Some(token.clone()));
    admin.target_create(&bm_api::targets::TargetCreate::named("default")).await.unwrap();
    (tmp, running, admin, token)
}
