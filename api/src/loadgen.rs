//! A lean HTTP/1.1 connection for load generators.
//!
//! The commit benchmarks run their clients on the same two cores as the
//! nodes they measure. Through [`crate::Client`] (reqwest, failover,
//! patience, a JSON value built per request) the bench's own 256 clients
//! took about half of the machine's CPU (a `perf` profile of the
//! single-node bench), so the figures said as much about the load
//! generator as about the node. A [`LoadConn`] speaks the same API over
//! one kept-alive TCP connection with the fewest moves: it writes the
//! request in one buffer and reads the answer's status line, headers and
//! body. It sends real requests (bearer token, JSON body) and checks the
//! status, so a node that fails a request fails the benchmark; it has no
//! failover, no retries and no TLS, and is meant for nothing else.

use std::fmt::Write as _;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a call on a [`LoadConn`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The socket failed.
    #[error("connection to {addr}: {source}")]
    Io {
        /// Where the connection went.
        addr: String,
        /// What the socket said.
        source: std::io::Error,
    },
    /// The node answered something this connection cannot read.
    #[error("answer from {addr}: {message}")]
    Protocol {
        /// Where the connection went.
        addr: String,
        /// What was wrong with it.
        message: String,
    },
    /// The node answered with a status other than 2xx.
    #[error("HTTP {status} from {addr}: {body}")]
    Status {
        /// Where the connection went.
        addr: String,
        /// The status code.
        status: u16,
        /// The answer's body, as text.
        body: String,
    },
}

/// One kept-alive HTTP/1.1 connection to a node's API, for benchmarks.
pub struct LoadConn {
    io: BufReader<TcpStream>,
    addr: String,
    auth: String,
    request: Vec<u8>,
    line: String,
}

impl LoadConn {
    /// Connects to `base` (`http://HOST:PORT`, as in a profile) with the
    /// bearer `token`.
    pub async fn connect(base: &str, token: &str) -> Result<Self, LoadError> {
        let addr = base.trim_start_matches("http://").trim_end_matches('/').to_string();
        if addr.contains('/') || base.starts_with("https://") {
            return Err(LoadError::Protocol { addr, message: "only plain http://HOST:PORT is supported".into() });
        }
        let stream = TcpStream::connect(&addr).await.map_err(|source| LoadError::Io { addr: addr.clone(), source })?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            io: BufReader::new(stream),
            addr,
            auth: format!("Bearer {token}"),
            request: Vec::new(),
            line: String::new(),
        })
    }

    /// Sends `method` to `/v1/<path>` with an optional JSON `body` and
    /// returns the answer's body; any status but 2xx is an error.
    pub async fn call(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, LoadError> {
        self.write_request(method, path, body).await?;
        let (status, body) = self.read_answer().await?;
        if !(200..300).contains(&status) {
            let body = String::from_utf8_lossy(&body).into_owned();
            return Err(LoadError::Status { addr: self.addr.clone(), status, body });
        }
        Ok(body)
    }

    /// Submits `job` (`POST /v1/jobs`) and returns the job the node made;
    /// an answer that is not a job is a protocol error.
    pub async fn submit(&mut self, job: &crate::jobs::JobSubmit) -> Result<crate::jobs::Job, LoadError> {
        let body = serde_json::to_vec(job).map_err(|e| self.protocol(&format!("cannot encode the job: {e}")))?;
        let answer = self.call("POST", "jobs", Some(&body)).await?;
        serde_json::from_slice(&answer).map_err(|e| self.protocol(&format!("the answer is not a job: {e}")))
    }

    async fn write_request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<(), LoadError> {
        let mut head = String::with_capacity(160);
        let path = path.trim_start_matches('/');
        let _ = write!(
            head,
            "{method} /{}/{path} HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\n",
            crate::PREFIX,
            self.addr,
            self.auth
        );
        if let Some(b) = body {
            let _ = write!(head, "content-type: application/json\r\ncontent-length: {}\r\n", b.len());
        }
        head.push_str("\r\n");
        self.request.clear();
        self.request.extend_from_slice(head.as_bytes());
        self.request.extend_from_slice(body.unwrap_or_default());
        let addr = &self.addr;
        self.io.get_mut().write_all(&self.request).await.map_err(|source| LoadError::Io { addr: addr.clone(), source })
    }

    /// Reads one line into `self.line`, without its CRLF.
    async fn read_line(&mut self) -> Result<(), LoadError> {
        self.line.clear();
        let n = self
            .io
            .read_line(&mut self.line)
            .await
            .map_err(|source| LoadError::Io { addr: self.addr.clone(), source })?;
        if n == 0 {
            return Err(protocol(&self.addr, "the node closed the connection"));
        }
        let kept = self.line.trim_end_matches(['\r', '\n']).len();
        self.line.truncate(kept);
        Ok(())
    }

    fn protocol(&self, message: &str) -> LoadError {
        protocol(&self.addr, message)
    }

    async fn read_answer(&mut self) -> Result<(u16, Vec<u8>), LoadError> {
        self.read_line().await?;
        let line = &self.line;
        let status = line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| protocol(&self.addr, &format!("not an HTTP/1.1 status line: {line:?}")))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            self.read_line().await?;
            let line = &self.line;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(protocol(&self.addr, &format!("bad header line {line:?}")));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| self.protocol("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let body = match (chunked, length) {
            (true, _) => self.read_chunked().await?,
            (false, Some(n)) => self.read_exact(n).await?,
            (false, None) => return Err(self.protocol("an answer with neither content-length nor chunks")),
        };
        Ok((status, body))
    }

    async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, LoadError> {
        let mut body = vec![0; n];
        let addr = &self.addr;
        self.io.read_exact(&mut body).await.map_err(|source| LoadError::Io { addr: addr.clone(), source })?;
        Ok(body)
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, LoadError> {
        let mut body = Vec::new();
        loop {
            self.read_line().await?;
            let size = self.line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| self.protocol("bad chunk size"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    self.read_line().await?;
                    if self.line.is_empty() {
                        return Ok(body);
                    }
                }
            }
            body.extend(self.read_exact(size).await?);
            self.read_line().await?;
            if !self.line.is_empty() {
                return Err(self.protocol("a chunk not followed by CRLF"));
            }
        }
    }
}

fn protocol(addr: &str, message: &str) -> LoadError {
    LoadError::Protocol { addr: addr.to_string(), message: message.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that reads one request and writes `answer`; returns the
    /// request it read.
    async fn serve_once(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).await.unwrap();
            got
        });
        (base, h)
    }

    #[tokio::test]
    async fn a_call_sends_token_and_body_and_reads_a_sized_answer() {
        let (base, h) = serve_once(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}").await;
        let mut c = LoadConn::connect(&base, "tok").await.unwrap();
        assert_eq!(c.call("POST", "jobs", Some(b"{\"a\":1}")).await.unwrap(), b"{}");
        let req = String::from_utf8(h.await.unwrap()).unwrap();
        assert!(req.starts_with("POST /v1/jobs HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("authorization: Bearer tok\r\n"), "{req}");
        assert!(req.contains("content-length: 7\r\n"), "{req}");
    }

    #[tokio::test]
    async fn a_chunked_answer_is_joined() {
        let (base, _h) =
            serve_once(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").await;
        let mut c = LoadConn::connect(&base, "t").await.unwrap();
        assert_eq!(c.call("GET", "whoami", None).await.unwrap(), b"abcde");
    }

    #[tokio::test]
    async fn an_error_status_is_an_error_with_the_body() {
        let (base, _h) = serve_once(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\n\r\nnope").await;
        let mut c = LoadConn::connect(&base, "t").await.unwrap();
        let e = c.call("GET", "whoami", None).await.unwrap_err();
        assert!(matches!(e, LoadError::Status { status: 403, .. }), "{e}");
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[tokio::test]
    async fn a_garbage_answer_is_a_protocol_error() {
        let (base, _h) = serve_once(b"SMTP ready\r\n\r\n").await;
        let mut c = LoadConn::connect(&base, "t").await.unwrap();
        let e = c.call("GET", "whoami", None).await.unwrap_err();
        assert!(matches!(e, LoadError::Protocol { .. }), "{e}");
    }
}
