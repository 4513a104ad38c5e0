//! The one place where bm encodes and decodes binary records (log entries,
//! snapshots, commands, frames): bincode 2 in its standard configuration,
//! always decoded with an explicit size limit.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest record we ever decode unless the caller asks for a different limit.
pub const DEFAULT_LIMIT: usize = 64 * 1024 * 1024;

/// Why a record could not be decoded; it names the record for the message.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded (for the message).
        what: &'static str,
        /// The underlying bincode error.
        source: bincode::error::DecodeError,
    },
    /// The record is larger than allowed.
    #[error("cannot decode {what}: {len} bytes is over the limit of {limit}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Trailing bytes after a complete record: a framing error.
    #[error("cannot decode {what}: {extra} trailing bytes")]
    Trailing {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The value could not be encoded (a type bincode cannot represent).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The underlying bincode error.
        source: bincode::error::EncodeError,
    },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Encodes `value` for storage or the wire.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|source| CodecError::Encode { what, source })
}

/// Decodes a whole record of at most [`DEFAULT_LIMIT`] bytes.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    decode_limited(what, bytes, DEFAULT_LIMIT)
}

/// Decodes a whole record of at most `limit` bytes; trailing bytes are an error.
pub fn decode_limited<T: DeserializeOwned>(what: &'static str, bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge { what, len: bytes.len(), limit });
    }
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|source| CodecError::Decode { what, source })?;
    if used != bytes.len() {
        return Err(CodecError::Trailing { what, extra: bytes.len() - used });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = (1u64, "two".to_string(), vec![3u8; 10]);
        let b = encode("t", &v).unwrap();
        let back: (u64, String, Vec<u8>) = decode("t", &b).unwrap();
        assert_eq!(v, back);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let e = decode::<(u64, String)>("entry", &[0xff, 0xff, 0xff]).unwrap_err();
        assert!(e.to_string().contains("cannot decode entry"), "{e}");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = encode("t", &7u32).unwrap();
        b.push(0);
        assert!(matches!(decode::<u32>("t", &b), Err(CodecError::Trailing { .. })));
    }

    #[test]
    fn over_limit_is_refused_before_decoding() {
        let b = encode("t", &vec![0u8; 100]).unwrap();
        assert!(matches!(decode_limited::<Vec<u8>>("t", &b, 10), Err(CodecError::TooLarge { .. })));
    }
}
