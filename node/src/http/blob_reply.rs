//! Serving a blob over HTTP: the whole file or one byte range
//! (`Range: bytes=A-B`, `A-`, `-N`), with ETag = sha256, from any node
//! (streamed from a peer when this node lacks it, see
//! `crate::blobs::stream`).

use bm_api::{ApiError, ErrorCode};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::reply;
use crate::node::Node;

/// A parsed single byte range, inclusive.
#[derive(Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte.
    pub end: u64,
}

/// Parses a `Range` header against a file of `size` bytes. `Ok(None)` is
/// "no range" (serve it all); `Err` is unsatisfiable (416).
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, String> {
    let Some(h) = header else { return Ok(None) };
    let spec = h.trim().strip_prefix("bytes=").ok_or_else(|| format!("unsupported range unit in {h:?}"))?;
    if spec.contains(',') {
        return Err("multiple ranges are not supported".into());
    }
    let (a, b) = spec.split_once('-').ok_or_else(|| format!("bad range {h:?}"))?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("bad range {h:?}"));
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?;
            if n == 0 || size == 0 {
                return Err(format!("range {h:?} selects nothing of {size} bytes"));
            }
            (size.saturating_sub(n), size - 1)
        }
        (false, true) => (num(a)?, size.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(size.saturating_sub(1))),
        (true, true) => return Err(format!("bad range {h:?}")),
    };
    if start >= size || start > end {
        return Err(format!("range {h:?} is outside the {size} bytes"));
    }
    Ok(Some(ByteRange { start, end }))
}

/// The response for blob `sha` of `size` bytes.
pub async fn serve(node: &Node, sha: &str, size: u64, range: Option<String>) -> Response {
    let range = match parse_range(range.as_deref(), size) {
        Ok(r) => r,
        Err(why) => {
            let mut r = reply::error(&ApiError::new(ErrorCode::BadRequest, why));
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(v) = format!("bytes */{size}").parse() {
                r.headers_mut().insert("content-range", v);
            }
            return r;
        }
    };
    let (status, start, len) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = match crate::blobs::stream::open(node, sha, start, len).await {
        Ok(b) => b,
        Err(e) => return reply::error(&e),
    };
    let mut r = warp::reply::with_status(warp::reply::stream(body), status).into_response();
    let h = r.headers_mut();
    h.insert("content-type", "application/octet-stream".parse().expect("static header"));
    h.insert("accept-ranges", "bytes".parse().expect("static header"));
    h.insert("content-length", len.into());
    if let Ok(v) = format!("\"{sha}\"").parse() {
        h.insert("etag", v);
    }
    if let Some(r) = range {
        if let Ok(v) = format!("bytes {}-{}/{size}", r.start, r.end).parse() {
            h.insert("content-range", v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s: &str| parse_range(Some(s), 100);
        assert_eq!(r("bytes=0-9").unwrap(), Some(ByteRange { start: 0, end: 9 }));
        assert_eq!(r("bytes=90-").unwrap(), Some(ByteRange { start: 90, end: 99 }));
        assert_eq!(r("bytes=-10").unwrap(), Some(ByteRange { start: 90, end: 99 }));
        assert_eq!(r("bytes=50-500").unwrap(), Some(ByteRange { start: 50, end: 99 }));
        assert_eq!(parse_range(None, 100).unwrap(), None);
        for bad in ["bytes=100-", "bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=-", "bytes=a-b", "bytes=-0"] {
            assert!(r(bad).is_err(), "{bad}");
        }
    }
}
