//! Byte buffers as one block on the wire.
//!
//! serde sees a `Vec<u8>` as a sequence of `u8`, which bincode encodes and
//! decodes one element at a time: about 30 ms for a 4 MiB piece here, most
//! of the cost of replicating a blob or a batch of log lines. Marked with
//! `#[serde(with = "bm_api::byte_block")]`, the same field goes through
//! `serialize_bytes` (one copy). bincode writes both forms the same way
//! (a length, then the bytes), so data already stored reads back unchanged.

use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::Serializer;

/// Writes `v` as one byte block.
pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(v)
}

/// Reads a byte block (or, from a self-describing format, a sequence of bytes).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain(Vec<u8>);

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Block(#[serde(with = "crate::byte_block")] Vec<u8>);

    #[test]
    fn a_block_has_the_same_bincode_as_a_sequence_and_reads_either() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let plain = crate::codec::encode("t", &Plain(data.clone())).unwrap();
        let block = crate::codec::encode("t", &Block(data.clone())).unwrap();
        assert_eq!(plain, block, "stored data keeps its meaning");
        let back: Block = crate::codec::decode_limited("t", &plain, 1 << 20).unwrap();
        assert_eq!(back.0, data);
        let json = serde_json::to_string(&Plain(vec![1, 2])).unwrap();
        let from_json: Block = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json.0, vec![1, 2]);
    }
}
