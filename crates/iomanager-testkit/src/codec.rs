//! The codec suite: round trips, and damaged bytes giving `Error::Corrupted`.

use std::fmt::Debug;

use bytes::Bytes;
use futures::StreamExt;
use iomanager_core::{Codec, ErrorKind};

/// Every sample survives encode then decode.
pub fn round_trips<T, C>(codec: &C, samples: Vec<T>)
where
    T: PartialEq + Debug + Send + 'static,
    C: Codec<T>,
{
    assert!(!samples.is_empty(), "the codec suite needs samples");
    assert!(codec.extension().is_empty() || codec.extension().starts_with('.'));
    for v in samples {
        let bytes = codec.encode(&v).unwrap();
        let back = codec.decode(bytes).unwrap();
        assert_eq!(back, v);
    }
}

/// Every strict prefix of an encoding (sampled for long ones) is `Corrupted`.
pub fn truncation_is_corrupted<T, C>(codec: &C, samples: Vec<T>)
where
    T: Send + 'static,
    C: Codec<T>,
{
    for v in samples {
        let bytes = codec.encode(&v).unwrap();
        let step = (bytes.len() / 257).max(1);
        for n in (0..bytes.len()).step_by(step) {
            match codec.decode(bytes.slice(..n)) {
                Ok(_) => panic!("a truncation to {n} of {} bytes decoded", bytes.len()),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupted, "truncated to {n}: {e}"),
            }
        }
    }
}

/// Flipping a bit anywhere in an encoding (sampled for long ones) is `Corrupted`.
pub fn bit_flips_are_corrupted<T, C>(codec: &C, samples: Vec<T>)
where
    T: Send + 'static,
    C: Codec<T>,
{
    for v in samples {
        let bytes = codec.encode(&v).unwrap();
        let step = (bytes.len() / 257).max(1);
        for i in (0..bytes.len()).step_by(step) {
            let mut damaged = bytes.to_vec();
            damaged[i] ^= 1 << (i % 8);
            match codec.decode(Bytes::from(damaged)) {
                Ok(_) => panic!("a bit flip at byte {i} decoded"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupted, "flip at {i}: {e}"),
            }
        }
    }
}

/// Empty input and unrelated bytes are `Corrupted`.
pub fn garbage_is_corrupted<T, C>(codec: &C)
where
    T: Send + 'static,
    C: Codec<T>,
{
    let inputs: [&[u8]; 3] = [b"", b"this is not what the codec wrote", &[0xff; 64]];
    for g in inputs {
        match codec.decode(Bytes::copy_from_slice(g)) {
            Ok(_) => panic!("garbage {g:?} decoded"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}"),
        }
    }
}

/// Streamed encode and decode agree with the whole-value forms.
pub async fn stream_round_trips<T, C>(codec: &C, samples: Vec<T>)
where
    T: PartialEq + Debug + Clone + Send + 'static,
    C: Codec<T>,
{
    for v in samples {
        let mut stream = codec.encode_stream(v.clone()).unwrap();
        let mut chunks = Vec::new();
        while let Some(c) = stream.next().await {
            chunks.push(c);
        }
        let back = codec
            .decode_stream(futures::stream::iter(chunks).boxed())
            .await
            .unwrap();
        assert_eq!(back, v);
    }
}
