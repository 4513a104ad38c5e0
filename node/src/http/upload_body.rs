//! An HTTP upload's body as the pieces the blob store takes, read as it
//! arrives instead of whole into memory (a 1 GiB output used to take 1 GiB
//! of the node's memory for the length of its upload).
//!
//! The size is announced up front (`Content-Length`, or the `size` query
//! of a chunked upload whose source reads a file as it goes). A piece is
//! [`CHUNK`] bytes at a multiple of [`CHUNK`], as the store writes best;
//! the piece that completes the size is handed on only once the body has
//! ended cleanly. So an upload whose sender gives up part-way, even after
//! its last byte (an agent that found the file changed under it), ends in
//! an error and stores nothing.

use bm_api::{ApiError, ErrorCode};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};

use crate::blobs::CHUNK;

/// The `size` bytes of `body` in [`CHUNK`] pieces; `what` names the upload
/// in errors ("output /tmp/a.log").
pub fn pieces<B, E>(
    body: impl Stream<Item = Result<B, E>> + Send + Unpin + 'static,
    size: u64,
    what: String,
) -> impl Stream<Item = Result<Bytes, ApiError>> + Send + Unpin + 'static
where
    B: Buf,
    E: std::fmt::Display,
{
    let start = Rechunk { body, size, got: 0, handed: 0, buf: BytesMut::new(), what, done: false };
    Box::pin(futures::stream::unfold(start, |mut r| async move {
        if r.done {
            return None;
        }
        let item = r.next_piece().await;
        match item {
            Some(Ok(piece)) => Some((Ok(piece), r)),
            Some(Err(e)) => {
                r.done = true;
                Some((Err(e), r))
            }
            None => None,
        }
    }))
}

struct Rechunk<S> {
    body: S,
    size: u64,
    /// Bytes received from the body.
    got: u64,
    /// Bytes handed on as pieces.
    handed: u64,
    buf: BytesMut,
    what: String,
    done: bool,
}

impl<S, B, E> Rechunk<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: Buf,
    E: std::fmt::Display,
{
    fn bad(&self, why: String) -> ApiError {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("{} not received whole ({} bytes announced): {why}", self.what, self.size),
        )
    }

    async fn next_piece(&mut self) -> Option<Result<Bytes, ApiError>> {
        loop {
            // A whole piece that is not the last can go at once.
            if self.buf.len() >= CHUNK && self.handed + (CHUNK as u64) < self.size {
                self.handed += CHUNK as u64;
                return Some(Ok(self.buf.split_to(CHUNK).freeze()));
            }
            match self.body.next().await {
                Some(Ok(frame)) => {
                    let n = frame.remaining() as u64;
                    if self.got + n > self.size {
                        return Some(Err(self.bad(format!("more than announced after {} bytes", self.got))));
                    }
                    self.got += n;
                    self.buf.put(frame);
                }
                Some(Err(e)) => return Some(Err(self.bad(format!("{} bytes came before: {e}", self.got)))),
                None if self.got < self.size => {
                    return Some(Err(self.bad(format!("the body ended after {} bytes", self.got))))
                }
                // The body ended cleanly with every byte: the rest goes.
                None => {
                    self.done = true;
                    if self.buf.is_empty() {
                        return None;
                    }
                    self.handed += self.buf.len() as u64;
                    return Some(Ok(self.buf.split().freeze()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(
        frames: Vec<Result<&'static [u8], &'static str>>,
    ) -> impl Stream<Item = Result<Bytes, String>> + Send + Unpin {
        futures::stream::iter(frames.into_iter().map(|f| f.map(Bytes::from_static).map_err(str::to_string)))
    }

    async fn collect(s: impl Stream<Item = Result<Bytes, ApiError>> + Unpin) -> Vec<Result<Bytes, String>> {
        s.map(|r| r.map_err(|e| e.message)).collect().await
    }

    #[tokio::test]
    async fn whole_pieces_then_the_rest_after_the_end() {
        let big: &'static [u8] = Box::leak(vec![7u8; CHUNK + CHUNK / 2].into_boxed_slice());
        let (a, b) = big.split_at(1000);
        let got = collect(pieces(body(vec![Ok(a), Ok(b), Ok(b"xyz")]), big.len() as u64 + 3, "output /a".into())).await;
        let lens: Vec<usize> = got.iter().map(|r| r.as_ref().unwrap().len()).collect();
        assert_eq!(lens, vec![CHUNK, CHUNK / 2 + 3]);
    }

    #[tokio::test]
    async fn the_last_piece_waits_for_a_clean_end() {
        // Every byte came, then the sender gave up: nothing may look whole.
        let got = collect(pieces(body(vec![Ok(b"abc"), Err("connection reset")]), 3, "output /a".into())).await;
        assert_eq!(got.len(), 1);
        let e = got[0].as_ref().unwrap_err();
        assert!(
            e.contains("output /a not received whole (3 bytes announced)") && e.contains("connection reset"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn short_and_long_bodies_are_refused() {
        let got = collect(pieces(body(vec![Ok(b"ab")]), 3, "output /a".into())).await;
        assert!(got[0].as_ref().unwrap_err().contains("ended after 2 bytes"), "{got:?}");
        let got = collect(pieces(body(vec![Ok(b"ab"), Ok(b"cd")]), 3, "output /a".into())).await;
        assert!(got[0].as_ref().unwrap_err().contains("more than announced after 2 bytes"), "{got:?}");
        assert_eq!(got.len(), 1, "nothing after an error");
    }

    #[tokio::test]
    async fn an_empty_upload_is_no_piece() {
        assert!(collect(pieces(body(vec![]), 0, "output /a".into())).await.is_empty());
        assert!(collect(pieces(body(vec![Ok(b"")]), 0, "output /a".into())).await.is_empty());
    }
}
