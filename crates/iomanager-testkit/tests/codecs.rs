//! The codec suite against the codecs in core.

use bytes::Bytes;
use iomanager_core::{BytesCodec, MessagePackCodec};
use iomanager_testkit::{Sample, codec_suite};

fn samples() -> Vec<Sample> {
    (0..5).map(Sample::new).collect()
}

fn blobs() -> Vec<Bytes> {
    vec![
        Bytes::new(),
        Bytes::from_static(b"x"),
        Bytes::from((0..=255u8).cycle().take(70_000).collect::<Vec<u8>>()),
    ]
}

codec_suite!(msgpack_samples, MessagePackCodec::new(), Sample, samples());
codec_suite!(
    msgpack_strings,
    MessagePackCodec::new(),
    Vec<String>,
    vec![vec![], vec!["a".to_string(), "ü".repeat(300)]]
);
codec_suite!(bytes_codec, BytesCodec, Bytes, blobs());
