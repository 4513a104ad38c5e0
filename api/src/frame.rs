//! Framing on a QUIC stream: a u32 big-endian length, then that many bytes.
//!
//! Shared by the peer link (nodes) and the agent link (agents and nodes):
//! one request frame and one response frame per stream, raw bytes after
//! them where a call carries a file. The length is checked
//! against the limit before anything is allocated, so a peer cannot make us
//! reserve 4 GiB by sending a length header.

use bytes::Bytes;
use quinn::{ReadError, ReadExactError, RecvStream, SendStream, WriteError};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The header announces more than the limit.
    #[error("frame of {len} bytes is over the limit of {max}")]
    TooLarge { len: u64, max: usize },
    /// The stream ended inside the header or the body.
    #[error("stream ended after {got} of {want} frame bytes")]
    Truncated { got: usize, want: usize },
    /// The stream or the connection failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Why a frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteFrameError {
    /// The body is over the limit; nothing was sent.
    #[error("frame of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The stream or the connection failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Largest frame the header can express.
const HEADER_MAX: usize = u32::MAX as usize;

/// Reads one frame of at most `max` bytes.
pub async fn read_frame(recv: &mut RecvStream, max: usize) -> Result<Vec<u8>, ReadFrameError> {
    let mut header = [0u8; 4];
    recv.read_exact(&mut header).await.map_err(|e| truncated(e, 4))?;
    let len = u32::from_be_bytes(header);
    if len as u64 > max.min(HEADER_MAX) as u64 {
        return Err(ReadFrameError::TooLarge { len: len.into(), max });
    }
    read_bytes(recv, len as usize).await
}

/// Reads exactly `len` bytes (a frame's body, or a piece of a file after
/// one). The bytes are copied out of the packets as they come into a buffer
/// that is never zeroed first: zeroing a 4 MiB piece, then copying over
/// it, was 3% of the machine in the 3-node upload bench.
pub async fn read_bytes(recv: &mut RecvStream, len: usize) -> Result<Vec<u8>, ReadFrameError> {
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await? {
            Some(chunk) => body.extend_from_slice(&chunk.bytes),
            None => return Err(ReadFrameError::Truncated { got: body.len(), want: len }),
        }
    }
    Ok(body)
}

fn truncated(e: ReadExactError, want: usize) -> ReadFrameError {
    match e {
        ReadExactError::FinishedEarly(got) => ReadFrameError::Truncated { got, want },
        ReadExactError::ReadError(e) => ReadFrameError::Read(e),
    }
}

/// Writes one frame of at most `max` bytes (the caller finishes the stream).
/// The body is handed to the stream as it is, not copied into it: a blob
/// piece is 4 MiB, and each copy of it showed in the upload profile.
pub async fn write_frame(send: &mut SendStream, body: Bytes, max: usize) -> Result<(), WriteFrameError> {
    let limit = max.min(HEADER_MAX);
    if body.len() > limit {
        return Err(WriteFrameError::TooLarge { len: body.len(), max: limit });
    }
    let header = (body.len() as u32).to_be_bytes();
    send.write_all(&header).await?;
    send.write_chunk(body).await?;
    Ok(())
}
