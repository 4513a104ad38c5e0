//! The agent's end of `bmat`: a Unix socket the job's processes can reach,
//! answering store, process and factory requests for the running job.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bm_api::agent::{AgentEvent, AgentStorePut, AssignedFactory, Assignment};
use bm_api::agent_link::AgentClient;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::process::{self, Procs, Spec};
use super::proto::{Answer, Request};
use crate::run::RunAs;

/// Longest request line (a process's whole environment fits).
const MAX_REQUEST: u64 = 1 << 20;

/// What requests are answered from.
struct Ctx {
    client: AgentClient,
    job: String,
    epoch: u64,
    store: Mutex<BTreeMap<String, String>>,
    factory: Option<AssignedFactory>,
    run_as: Option<RunAs>,
    tx: mpsc::Sender<AgentEvent>,
    procs: Procs,
}

/// A listening `bmat` socket for one job.
pub struct Bmat {
    socket: PathBuf,
    dir: PathBuf,
    accept: JoinHandle<()>,
    procs: Procs,
}

impl Bmat {
    /// Listens on a fresh socket for the job of `a`; log lines of background
    /// processes go to `tx`.
    pub fn start(
        client: &AgentClient,
        a: &Assignment,
        run_as: Option<RunAs>,
        tx: mpsc::Sender<AgentEvent>,
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("bmat-{}", a.job.id));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let socket = dir.join("sock");
        let listener = UnixListener::bind(&socket)?;
        // The job runs as `build`; the socket is its way in, and only the
        // job's processes can see this private /tmp.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        let procs = Procs::default();
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            job: a.job.id.clone(),
            epoch: a.epoch,
            store: Mutex::new(a.store.clone()),
            factory: a.factory.clone(),
            run_as,
            tx,
            procs: procs.clone(),
        });
        let accept = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(ctx.clone(), conn));
            }
        });
        Ok(Self { socket, dir, accept, procs })
    }

    /// The socket's path, for `$BMAT_SOCKET`.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Stops answering, kills the background processes and removes the socket.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        self.procs.stop_all().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn serve(ctx: Arc<Ctx>, conn: UnixStream) {
    let (r, mut w) = conn.into_split();
    let mut line = String::new();
    let answer = match BufReader::new(r.take(MAX_REQUEST)).read_line(&mut line).await {
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Ok(req) => answer(&ctx, req).await,
            Err(e) => Answer::Err(format!("unreadable request: {e}")),
        },
        Err(e) => Answer::Err(format!("cannot read the request: {e}")),
    };
    let mut out = serde_json::to_string(&answer).unwrap_or_else(|_| r#"{"err":"cannot encode"}"#.into());
    out.push('\n');
    let _ = w.write_all(out.as_bytes()).await;
}

async fn answer(ctx: &Ctx, req: Request) -> Answer {
    match req {
        Request::StoreGet { name } => match ctx.store.lock().expect("store lock").get(&name) {
            Some(v) => Answer::Ok(Some(v.clone())),
            None => Answer::Err(format!("no value {name:?} in the job store")),
        },
        Request::StorePut { name, value, secret } => {
            let put = AgentStorePut { epoch: ctx.epoch, value: value.clone(), secret };
            let stored =
                crate::run::retry_transient("store put", || ctx.client.agent_store_put(&ctx.job, &name, &put)).await;
            match stored {
                Ok(()) => {
                    ctx.store.lock().expect("store lock").insert(name, value);
                    Answer::Ok(None)
                }
                Err(e) => Answer::Err(format!("cannot store {name:?}: {e}")),
            }
        }
        Request::ProcessStart { name, argv, cwd, env } => {
            let shown = argv.join(" ");
            match ctx.procs.start(Spec { name: name.clone(), argv, cwd, env }, ctx.run_as, &ctx.tx) {
                Ok(pid) => {
                    process::control(&ctx.tx, format!("background process {name} started (pid {pid}): {shown}")).await;
                    Answer::Ok(None)
                }
                Err(e) => Answer::Err(e),
            }
        }
        Request::FactoryName => factory(ctx, |f| f.name.clone()),
        Request::FactoryId => factory(ctx, |f| f.id.clone()),
    }
}

fn factory(ctx: &Ctx, pick: impl Fn(&AssignedFactory) -> String) -> Answer {
    match &ctx.factory {
        Some(f) => Answer::Ok(Some(pick(f))),
        None => Answer::Err("this worker was not made by a factory".into()),
    }
}
