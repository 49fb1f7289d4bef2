//! Frame codec of a channel (remote-comms.md §4.1): an unsigned LEB128 varint length prefix
//! followed by that many payload bytes (UTF-8 JSON text), the `lpStream` format of
//! `@libp2p/utils`. The payload is limited to `max_message_size_bytes`; an announced length
//! above it is an error, after which the stream is desynchronised and must be abandoned.

use std::io;

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Appends the unsigned LEB128 encoding of `value` to `out`.
pub(crate) fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// How many varint bytes a length of at most `max` may take (3 for 1 MiB), as `lpStream`
/// derives its `maxLengthLength` from `maxDataLength`.
pub(crate) fn max_length_length(max: usize) -> usize {
    let mut buf = Vec::with_capacity(10);
    encode_varint(max as u64, &mut buf);
    buf.len()
}

/// Encodes one frame: varint length + payload.
pub(crate) fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(payload.len() + 5);
    encode_varint(payload.len() as u64, &mut buf);
    buf.extend_from_slice(payload);
    buf
}

/// Writes one frame and flushes it.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let buf = encode_frame(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Why reading a frame failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The announced length exceeds the limit (or its varint is longer than the limit allows).
    Oversize(String),
    /// The stream failed or ended inside a frame.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Oversize(m) => write!(f, "{m}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one frame. `Ok(None)` is a clean end of stream before the first byte of a frame.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let max_len_len = max_length_length(max);
    let mut len: u64 = 0;
    let mut shift = 0u32;
    let mut count = 0usize;
    loop {
        let mut byte = [0u8; 1];
        let n = r.read(&mut byte).await?;
        if n == 0 {
            if count == 0 {
                return Ok(None);
            }
            return Err(ReadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended inside a frame length",
            )));
        }
        count += 1;
        len |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if count >= max_len_len {
            return Err(ReadError::Oversize(format!(
                "frame length prefix longer than {max_len_len} bytes (limit {max} bytes)"
            )));
        }
    }
    if len > max as u64 {
        return Err(ReadError::Oversize(format!("incoming frame of {len} bytes exceeds the limit of {max} bytes")));
    }
    // `len <= max`, which is a usize, so the cast is lossless.
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_leb128() {
        let cases: [(u64, &[u8]); 5] =
            [(0, &[0]), (1, &[1]), (127, &[0x7f]), (128, &[0x80, 0x01]), (1_048_576, &[0x80, 0x80, 0x40])];
        for (v, want) in cases {
            let mut buf = Vec::new();
            encode_varint(v, &mut buf);
            assert_eq!(buf, want, "{v}");
        }
        assert_eq!(max_length_length(1_048_576), 3);
    }

    #[test]
    fn frames_round_trip_and_oversize_is_refused() {
        futures::executor::block_on(async {
            let mut wire = Vec::new();
            write_frame(&mut wire, b"hello").await.unwrap();
            write_frame(&mut wire, b"").await.unwrap();
            write_frame(&mut wire, &[b'x'; 300]).await.unwrap();
            let mut r = futures::io::Cursor::new(wire);
            assert_eq!(read_frame(&mut r, 1000).await.unwrap().unwrap(), b"hello");
            assert_eq!(read_frame(&mut r, 1000).await.unwrap().unwrap(), b"");
            assert_eq!(read_frame(&mut r, 1000).await.unwrap().unwrap().len(), 300);
            assert!(read_frame(&mut r, 1000).await.unwrap().is_none());

            let mut wire = Vec::new();
            write_frame(&mut wire, &[b'x'; 300]).await.unwrap();
            let mut r = futures::io::Cursor::new(wire);
            assert!(matches!(read_frame(&mut r, 299).await, Err(ReadError::Oversize(_))));

            // A varint longer than the limit allows is refused before it is complete.
            let mut r = futures::io::Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 0x01]);
            assert!(matches!(read_frame(&mut r, 1_048_576).await, Err(ReadError::Oversize(_))));

            // Truncated payload.
            let mut r = futures::io::Cursor::new(vec![5, b'a']);
            assert!(matches!(read_frame(&mut r, 100).await, Err(ReadError::Io(_))));
        });
    }
}
