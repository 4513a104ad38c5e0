//! Framing on a QUIC stream: a u32 big-endian length, then that many bytes.
//!
//! Shared by the peer link (nodes) and the agent link (agents and nodes):
//! one request frame and one response frame per stream, raw bytes after
//! them where a call carries a file. The length is checked
//! against the limit before anything is allocated, so a peer cannot make us
//! reserve 4 GiB by sending a length header.

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
    let len = len as usize;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| truncated(e, len))?;
    Ok(body)
}

fn truncated(e: ReadExactError, want: usize) -> ReadFrameError {
    match e {
        ReadExactError::FinishedEarly(got) => ReadFrameError::Truncated { got, want },
        ReadExactError::ReadError(e) => ReadFrameError::Read(e),
    }
}

/// Writes one frame of at most `max` bytes (the caller finishes the stream).
pub async fn write_frame(send: &mut SendStream, body: &[u8], max: usize) -> Result<(), WriteFrameError> {
    let limit = max.min(HEADER_MAX);
    if body.len() > limit {
        return Err(WriteFrameError::TooLarge { len: body.len(), max: limit });
    }
    let header = (body.len() as u32).to_be_bytes();
    send.write_all(&header).await?;
    send.write_all(body).await?;
    Ok(())
}
