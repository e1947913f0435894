//! The format layer: a [`Codec`] turns a value into bytes and back and names its extension. It
//! knows nothing about where the bytes go.

use std::any::type_name;
use std::marker::PhantomData;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Location, Result};
use crate::receipt::MetadataValue;
use crate::storage::ByteStream;

/// Turns values of type `T` into bytes and back.
///
/// Errors from `decode` are [`Error::Corrupted`] for bytes that fail a checksum or cannot be
/// parsed, and [`Error::TypeMismatch`] for well-formed data of another shape; encode errors are
/// [`Error::Encode`]. The manager fills in the uri, asset and partition.
#[async_trait]
pub trait Codec<T: Send + 'static>: Send + Sync + 'static {
    /// The format's name (`msgpack`, `parquet`, `jsonl`).
    fn format(&self) -> &str;

    /// The extension appended to stored paths, with its dot, or `""` for none.
    fn extension(&self) -> &str;

    /// Encodes a value.
    fn encode(&self, value: &T) -> Result<Bytes>;

    /// Decodes stored bytes.
    fn decode(&self, bytes: Bytes) -> Result<T>;

    /// Metadata entries describing a value (rows, columns, schema), added to the receipt.
    fn describe(&self, _value: &T) -> Vec<(String, MetadataValue)> {
        Vec::new()
    }

    /// True when values should be written as a stream: the manager then uses
    /// [`Codec::encode_stream`] with the storage's streaming put.
    fn streams(&self) -> bool {
        false
    }

    /// True when values should be read as a stream: the manager then uses the storage's
    /// streaming get with [`Codec::decode_stream`]. Defaults to [`Codec::streams`].
    fn streams_on_read(&self) -> bool {
        self.streams()
    }

    /// Encodes a value as a stream of chunks (bounded memory for large values). The default
    /// encodes the whole value at once.
    fn encode_stream(&self, value: T) -> Result<ByteStream> {
        let bytes = self.encode(&value)?;
        Ok(futures::stream::once(async move { Ok(bytes) }).boxed())
    }

    /// Decodes a value from a stream of chunks. The default collects the stream first.
    async fn decode_stream(&self, mut stream: ByteStream) -> Result<T> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        self.decode(buf.freeze())
    }
}

/// The magic bytes that open every object the MessagePack codec writes.
pub const MSGPACK_MAGIC: &[u8; 4] = b"IOMP";
/// The envelope version the MessagePack codec writes.
pub const MSGPACK_ENVELOPE_VERSION: u8 = 1;
/// The envelope's size: magic (4), version (1), payload length (u64 LE), xxh3-64 of the
/// payload (u64 LE).
pub const MSGPACK_HEADER_LEN: usize = 4 + 1 + 8 + 8;

/// The default codec: MessagePack through serde, iomanager's answer to pickle.
///
/// Each stored object is an envelope — `IOMP`, version byte `1`, the payload length and the
/// xxh3-64 checksum of the payload, both little-endian `u64` — followed by the MessagePack
/// payload (structs as maps with field names, so fields can be added later). A flipped bit or a
/// truncation gives [`Error::Corrupted`], never a wrong value. The envelope is simple to read from
/// Python: check the 21-byte header, then `msgpack.unpackb(data[21:])`.
///
/// ```
/// use iomanager_core::{Codec, MessagePackCodec};
/// let codec = MessagePackCodec::new();
/// let bytes = Codec::<Vec<u32>>::encode(&codec, &vec![1, 2, 3])?;
/// let back: Vec<u32> = codec.decode(bytes)?;
/// assert_eq!(back, [1, 2, 3]);
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackCodec {
    _private: PhantomData<()>,
}

impl MessagePackCodec {
    /// The codec (no extension, like Dagster's pickle managers).
    pub fn new() -> Self {
        Self::default()
    }
}

fn corrupted(reason: String) -> Error {
    Error::Corrupted {
        at: Location::default().into(),
        reason,
    }
}

/// Wraps a MessagePack payload in the checksummed envelope.
pub fn msgpack_envelope(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(MSGPACK_HEADER_LEN + payload.len());
    out.put_slice(MSGPACK_MAGIC);
    out.put_u8(MSGPACK_ENVELOPE_VERSION);
    out.put_u64_le(payload.len() as u64);
    out.put_u64_le(xxhash_rust::xxh3::xxh3_64(payload));
    out.put_slice(payload);
    out.freeze()
}

/// Checks the envelope and returns the payload, or [`Error::Corrupted`] saying what failed.
pub fn msgpack_payload(bytes: &Bytes) -> Result<Bytes> {
    if bytes.len() < MSGPACK_HEADER_LEN {
        return Err(corrupted(format!(
            "truncated: {} bytes stored, the MessagePack envelope header alone needs {}",
            bytes.len(),
            MSGPACK_HEADER_LEN
        )));
    }
    if &bytes[..4] != MSGPACK_MAGIC {
        return Err(corrupted(
            "not an iomanager MessagePack object (bad magic bytes)".to_owned(),
        ));
    }
    if bytes[4] != MSGPACK_ENVELOPE_VERSION {
        return Err(corrupted(format!(
            "unknown MessagePack envelope version {}",
            bytes[4]
        )));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[5..13]);
    let len = u64::from_le_bytes(len);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[13..21]);
    let sum = u64::from_le_bytes(sum);
    let actual = (bytes.len() - MSGPACK_HEADER_LEN) as u64;
    if actual != len {
        return Err(corrupted(format!(
            "length mismatch: the header says {len} payload bytes, {actual} are stored \
             (truncated or overwritten)"
        )));
    }
    let payload = bytes.slice(MSGPACK_HEADER_LEN..);
    let computed = xxhash_rust::xxh3::xxh3_64(&payload);
    if computed != sum {
        return Err(corrupted(format!(
            "checksum mismatch: stored {sum:016x}, computed {computed:016x}"
        )));
    }
    Ok(payload)
}

impl<T> Codec<T> for MessagePackCodec
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn format(&self) -> &str {
        "msgpack"
    }

    fn extension(&self) -> &str {
        ""
    }

    fn encode(&self, value: &T) -> Result<Bytes> {
        // Serialize straight after a reserved header, then fill the header in: one buffer, no
        // second copy of the payload.
        let mut buf = Vec::with_capacity(MSGPACK_HEADER_LEN + 256);
        buf.resize(MSGPACK_HEADER_LEN, 0);
        rmp_serde::encode::write_named(&mut buf, value).map_err(|e| Error::Encode {
            format: "msgpack".into(),
            at: Location::default().into(),
            reason: e.to_string(),
        })?;
        let payload_len = (buf.len() - MSGPACK_HEADER_LEN) as u64;
        let sum = xxhash_rust::xxh3::xxh3_64(&buf[MSGPACK_HEADER_LEN..]);
        buf[..4].copy_from_slice(MSGPACK_MAGIC);
        buf[4] = MSGPACK_ENVELOPE_VERSION;
        buf[5..13].copy_from_slice(&payload_len.to_le_bytes());
        buf[13..21].copy_from_slice(&sum.to_le_bytes());
        Ok(Bytes::from(buf))
    }

    fn decode(&self, bytes: Bytes) -> Result<T> {
        let payload = msgpack_payload(&bytes)?;
        rmp_serde::from_slice(&payload).map_err(|e| Error::TypeMismatch {
            at: Location::default().into(),
            expected: type_name::<T>().to_owned(),
            found: format!("MessagePack that does not decode as it ({e})"),
        })
    }
}

/// Raw bytes, stored as they are inside the same checksummed envelope as MessagePack (so a
/// flipped bit is still [`Error::Corrupted`]): for blobs such as images, models or files.
///
/// Writing does not copy the value: the envelope header and the bytes go to the storage as two
/// chunks. Reading returns a slice of what the storage read, again without a copy.
///
/// ```
/// use bytes::Bytes;
/// use iomanager_core::{BytesCodec, Codec};
/// let stored = BytesCodec.encode(&Bytes::from_static(b"blob"))?;
/// assert_eq!(BytesCodec.decode(stored)?, Bytes::from_static(b"blob"));
/// # Ok::<(), iomanager_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl BytesCodec {
    fn header(payload: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(MSGPACK_HEADER_LEN);
        out.put_slice(MSGPACK_MAGIC);
        out.put_u8(MSGPACK_ENVELOPE_VERSION);
        out.put_u64_le(payload.len() as u64);
        out.put_u64_le(xxhash_rust::xxh3::xxh3_64(payload));
        out.freeze()
    }
}

#[async_trait]
impl Codec<Bytes> for BytesCodec {
    fn format(&self) -> &str {
        "bytes"
    }

    fn extension(&self) -> &str {
        ""
    }

    fn encode(&self, value: &Bytes) -> Result<Bytes> {
        Ok(msgpack_envelope(value))
    }

    fn decode(&self, bytes: Bytes) -> Result<Bytes> {
        msgpack_payload(&bytes)
    }

    fn streams(&self) -> bool {
        true
    }

    fn streams_on_read(&self) -> bool {
        false
    }

    fn encode_stream(&self, value: Bytes) -> Result<ByteStream> {
        let header = Self::header(&value);
        Ok(futures::stream::iter([Ok(header), Ok(value)]).boxed())
    }

    async fn decode_stream(&self, mut stream: ByteStream) -> Result<Bytes> {
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk?);
        }
        let whole = if chunks.len() == 1 {
            chunks.pop().unwrap_or_default()
        } else {
            let mut buf = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in chunks {
                buf.extend_from_slice(&c);
            }
            buf.freeze()
        };
        self.decode(whole)
    }

    fn describe(&self, value: &Bytes) -> Vec<(String, MetadataValue)> {
        vec![("payload_bytes".to_owned(), MetadataValue::from(value.len()))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: u32,
        name: String,
    }

    fn enc(v: &Row) -> Bytes {
        Codec::<Row>::encode(&MessagePackCodec::new(), v).unwrap()
    }

    fn dec(b: Bytes) -> Result<Row> {
        Codec::<Row>::decode(&MessagePackCodec::new(), b)
    }

    #[test]
    fn envelope_matches_the_documented_layout() {
        let row = Row {
            id: 7,
            name: "x".into(),
        };
        let bytes = enc(&row);
        let payload = rmp_serde::to_vec_named(&row).unwrap();
        assert_eq!(bytes, msgpack_envelope(&payload));
        assert_eq!(&bytes[..4], b"IOMP");
        assert_eq!(bytes[4], 1);
        assert_eq!(
            u64::from_le_bytes(bytes[5..13].try_into().unwrap()),
            payload.len() as u64
        );
    }

    #[test]
    fn round_trip() {
        let row = Row {
            id: 7,
            name: "x".into(),
        };
        assert_eq!(dec(enc(&row)).unwrap(), row);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = enc(&Row {
            id: 7,
            name: "seven".into(),
        });
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut v = bytes.to_vec();
                v[i] ^= 1 << bit;
                let err = dec(Bytes::from(v)).unwrap_err();
                assert_eq!(
                    err.kind(),
                    ErrorKind::Corrupted,
                    "byte {i} bit {bit}: {err}"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = enc(&Row {
            id: 7,
            name: "seven".into(),
        });
        for n in 0..bytes.len() {
            let err = dec(bytes.slice(..n)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupted, "len {n}: {err}");
        }
    }

    #[test]
    fn garbage_and_trailing_bytes_are_corrupted() {
        assert_eq!(
            dec(Bytes::from_static(b"garbage garbage garbage"))
                .unwrap_err()
                .kind(),
            ErrorKind::Corrupted
        );
        let mut v = enc(&Row {
            id: 1,
            name: "a".into(),
        })
        .to_vec();
        v.push(0);
        assert_eq!(
            dec(Bytes::from(v)).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
    }

    #[test]
    fn another_type_is_a_type_mismatch() {
        let bytes =
            Codec::<Vec<String>>::encode(&MessagePackCodec::new(), &vec!["a".into()]).unwrap();
        let err = dec(bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeMismatch, "{err}");
    }
}
