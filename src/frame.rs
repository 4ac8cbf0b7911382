//! The wire format: a 4-byte big-endian length, then that many payload bytes.
//!
//! ```text
//!  offset 0         4                        4 + len
//!         +----+----+----+----+----------------------+
//!         |  len (u32, big-endian) |  payload (len bytes) |
//!         +----+----+----+----+----------------------+
//!  Python: struct.pack('!I', len(payload)) + payload
//! ```
//!
//! TCP is a byte stream: one `read` may end in the middle of a header, or
//! carry fifty frames at once (the notes' "sticky packets"). This module owns
//! turning such arbitrary chunks back into whole frames, and writing frames
//! into a buffer. It knows bytes only: never a socket, a token or a handler.
//!
//! The decoder copies as little as it can: frames that arrive whole inside one
//! chunk are handed out as slices of that chunk; only the unfinished frame at
//! the end of a chunk is kept, in a buffer that exists only while a frame is
//! unfinished and never holds more than `max + 4` bytes.

use std::fmt;
use std::io;

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// The default largest payload: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// A header declared a payload larger than the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    /// The length the header declared.
    pub declared: u64,
    /// The configured maximum.
    pub max: usize,
}

impl fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame of {} bytes exceeds the {}-byte limit",
            self.declared, self.max
        )
    }
}

impl std::error::Error for FrameTooLarge {}

/// What the caller wants after a frame was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep decoding.
    Continue,
    /// Stop here and drop the rest of the chunk (the connection is closing).
    Stop,
}

/// Reads the payload length from a complete header.
fn declared_len(header: &[u8]) -> u32 {
    u32::from_be_bytes([header[0], header[1], header[2], header[3]])
}

/// Checks a declared length against the maximum.
fn checked_len(header: &[u8], max: usize) -> Result<usize, FrameTooLarge> {
    let declared = declared_len(header);
    match usize::try_from(declared) {
        Ok(len) if len <= max => Ok(len),
        _ => Err(FrameTooLarge {
            declared: u64::from(declared),
            max,
        }),
    }
}

/// Decodes one frame from the start of `buf`.
///
/// Returns the payload and the number of bytes it used, `None` if `buf` does
/// not yet hold a whole frame, or an error as soon as a header declares more
/// than `max` (before any of the payload arrives).
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameTooLarge> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = checked_len(buf, max)?;
    let end = HEADER_LEN + len;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((&buf[HEADER_LEN..end], end)))
}

/// Appends one frame (header and payload) to `out`.
///
/// Fails only for payloads of 4 GiB or more, which the header cannot express.
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), FrameTooLarge> {
    encode_with(out, |w| w.extend_from_slice(payload))
}

/// Appends one frame whose payload `write` appends: the header is reserved
/// first and filled in once the payload's length is known, so a payload can
/// be built in place, with no buffer of its own.
///
/// A payload of 4 GiB or more is removed again (`out` is as before) and
/// reported.
pub fn encode_with(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut PayloadWriter<'_>),
) -> Result<(), FrameTooLarge> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    write(&mut PayloadWriter::new(out));
    let len = out.len() - start - HEADER_LEN;
    match u32::try_from(len) {
        Ok(len) => {
            out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(FrameTooLarge {
                declared: len as u64,
                max: u32::MAX as usize,
            })
        }
    }
}

/// An append-only view of an output buffer: a payload is written through it,
/// and nothing written before it (other replies, this frame's header) can be
/// changed or removed.
#[derive(Debug)]
pub struct PayloadWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> PayloadWriter<'a> {
    /// A writer that appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> PayloadWriter<'a> {
        let start = out.len();
        PayloadWriter { out, start }
    }

    /// Appends bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Appends one byte.
    pub fn push(&mut self, byte: u8) {
        self.out.push(byte);
    }

    /// Bytes written through this writer so far.
    pub fn len(&self) -> usize {
        self.out.len() - self.start
    }

    /// Whether nothing was written through it yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Extend<u8> for PayloadWriter<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.out.extend(bytes);
    }
}

/// So that `write!(w, "{n}")` formats straight into the reply.
impl io::Write for PayloadWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one frame to a blocking stream, header and payload in one write
/// (two writes would cost a packet each with `TCP_NODELAY`).
pub fn write_frame(stream: &mut impl io::Write, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_into(&mut frame, payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    stream.write_all(&frame)
}

/// Reads one frame from a blocking stream.
///
/// A header declaring more than `max` is an `InvalidData` error carrying
/// [`FrameTooLarge`]; the payload buffer grows as bytes arrive, so a lying
/// header cannot make the reader allocate 4 GiB up front.
pub fn read_frame(mut stream: impl io::Read, max: usize) -> io::Result<Vec<u8>> {
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header)?;
    let len =
        checked_len(&header, max).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    io::Read::read_to_end(&mut stream.take(len as u64), &mut payload)?;
    if payload.len() != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(payload)
}

/// Reassembles frames from chunks of a byte stream, split anywhere.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    /// The unfinished frame, header included. Empty (and unallocated) between
    /// frames, so an idle connection holds no decoder memory.
    partial: Vec<u8>,
}

/// What one [`FrameDecoder::feed`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Fed {
    /// Frames handed to the callback.
    pub frames: usize,
    /// A header declared more than the maximum, after those frames: the
    /// stream is unusable from there on.
    pub too_large: Option<FrameTooLarge>,
}

impl FrameDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Bytes of an unfinished frame held since an earlier chunk.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds one chunk; calls `on_frame` with each payload it completes, in
    /// order, and says how many it handed out.
    ///
    /// If a header declared more than `max` ([`Fed::too_large`]), the stream
    /// is unusable from there on and the caller closes the connection; the
    /// frames completed before the bad header were handed out (and counted).
    pub fn feed(&mut self, chunk: &[u8], max: usize, on_frame: impl FnMut(&[u8]) -> Flow) -> Fed {
        let mut fed = Fed::default();
        if let Err(too_large) = self.feed_counting(&mut fed, chunk, max, on_frame) {
            fed.too_large = Some(too_large);
        }
        fed
    }

    fn feed_counting(
        &mut self,
        fed: &mut Fed,
        mut chunk: &[u8],
        max: usize,
        mut on_frame: impl FnMut(&[u8]) -> Flow,
    ) -> Result<(), FrameTooLarge> {
        // 1. Finish the frame an earlier chunk started. Take only the bytes
        //    that frame needs, so the buffer never exceeds `max + 4`.
        if !self.partial.is_empty() {
            let used = self.fill_partial(chunk, max)?;
            chunk = &chunk[used..];
            match decode(&self.partial, max)? {
                None => return Ok(()),
                Some((payload, _)) => {
                    fed.frames += 1;
                    let flow = on_frame(payload);
                    // An empty buffer owns no memory: see the struct docs.
                    self.partial = Vec::new();
                    if flow == Flow::Stop {
                        return Ok(());
                    }
                }
            }
        }

        // 2. Frames wholly inside the chunk: hand out slices, copy nothing.
        while let Some((payload, used)) = decode(chunk, max)? {
            fed.frames += 1;
            if on_frame(payload) == Flow::Stop {
                return Ok(());
            }
            chunk = &chunk[used..];
        }

        // 3. Keep the unfinished tail. `decode` already checked its header (if
        //    complete), so the tail is shorter than `max + 4`.
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    /// Moves into `partial` the bytes of `chunk` its frame still lacks.
    fn fill_partial(&mut self, chunk: &[u8], max: usize) -> Result<usize, FrameTooLarge> {
        let mut used = 0;
        if self.partial.len() < HEADER_LEN {
            used = (HEADER_LEN - self.partial.len()).min(chunk.len());
            self.partial.extend_from_slice(&chunk[..used]);
            if self.partial.len() < HEADER_LEN {
                return Ok(used);
            }
        }
        let frame_len = HEADER_LEN + checked_len(&self.partial, max)?;
        let more = (frame_len - self.partial.len()).min(chunk.len() - used);
        self.partial.extend_from_slice(&chunk[used..used + more]);
        Ok(used + more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(&mut out, payload).unwrap();
        out
    }

    fn decode_all(d: &mut FrameDecoder, chunk: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let fed = d.feed(chunk, max, |p| {
            got.push(p.to_vec());
            Flow::Continue
        });
        assert_eq!(fed.too_large, None);
        got
    }

    #[test]
    fn header_is_big_endian_length() {
        assert_eq!(frame(b"abc"), b"\x00\x00\x00\x03abc");
        assert_eq!(&frame(&[0u8; 258])[..4], &[0, 0, 1, 2]);
    }

    #[test]
    fn zero_length_frame_is_valid() {
        let mut d = FrameDecoder::new();
        assert_eq!(
            decode_all(&mut d, &[0, 0, 0, 0], 16),
            vec![Vec::<u8>::new()]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn many_frames_in_one_chunk_all_decode_in_order() {
        let mut wire = Vec::new();
        for i in 0..50u8 {
            encode_into(&mut wire, &vec![i; i as usize]).unwrap();
        }
        let mut d = FrameDecoder::new();
        let got = decode_all(&mut d, &wire, 1024);
        assert_eq!(got.len(), 50);
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p, &vec![i as u8; i]);
        }
    }

    #[test]
    fn a_frame_fed_one_byte_at_a_time_decodes_once_at_the_last_byte() {
        let wire = frame(b"hello, world");
        let mut d = FrameDecoder::new();
        for (i, b) in wire.iter().enumerate() {
            let got = decode_all(&mut d, std::slice::from_ref(b), 1024);
            if i + 1 < wire.len() {
                assert!(got.is_empty(), "frame appeared early at byte {i}");
                assert_eq!(d.buffered(), i + 1);
            } else {
                assert_eq!(got, vec![b"hello, world".to_vec()]);
            }
        }
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn split_at_every_point_of_two_frames_gives_both() {
        let mut wire = frame(b"first");
        wire.extend(frame(b"second!"));
        for cut in 0..=wire.len() {
            let mut d = FrameDecoder::new();
            let mut got = decode_all(&mut d, &wire[..cut], 64);
            got.extend(decode_all(&mut d, &wire[cut..], 64));
            assert_eq!(
                got,
                vec![b"first".to_vec(), b"second!".to_vec()],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn payload_of_exactly_max_is_accepted_and_max_plus_one_refused() {
        let mut d = FrameDecoder::new();
        assert_eq!(decode_all(&mut d, &frame(&[7; 100]), 100).len(), 1);
        let err = d
            .feed(&frame(&[7; 101]), 100, |_| Flow::Continue)
            .too_large
            .unwrap();
        assert_eq!(
            err,
            FrameTooLarge {
                declared: 101,
                max: 100
            }
        );
    }

    #[test]
    fn oversized_header_is_refused_before_the_payload_arrives() {
        let mut d = FrameDecoder::new();
        let err = d
            .feed(&0xFFFF_FFF0u32.to_be_bytes(), 1 << 20, |_| Flow::Continue)
            .too_large
            .unwrap();
        assert_eq!(err.declared, 0xFFFF_FFF0);
        assert!(d.buffered() <= HEADER_LEN);
        assert_eq!(
            err.to_string(),
            "frame of 4294967280 bytes exceeds the 1048576-byte limit"
        );
    }

    #[test]
    fn oversized_header_split_across_chunks_is_refused() {
        let mut d = FrameDecoder::new();
        assert!(
            d.feed(&[0, 0x10], 100, |_| Flow::Continue)
                .too_large
                .is_none()
        );
        assert!(d.feed(&[0, 0], 100, |_| Flow::Continue).too_large.is_some());
    }

    #[test]
    fn stop_drops_the_rest_of_the_chunk() {
        let mut wire = frame(b"a");
        wire.extend(frame(b"b"));
        let mut d = FrameDecoder::new();
        let mut seen = 0;
        let fed = d.feed(&wire, 16, |_| {
            seen += 1;
            Flow::Stop
        });
        assert_eq!((seen, fed.frames), (1, 1));
    }

    #[test]
    fn buffer_is_released_once_the_partial_frame_completes() {
        let wire = frame(&[1; 1000]);
        let mut d = FrameDecoder::new();
        decode_all(&mut d, &wire[..500], 2000);
        assert!(d.partial.capacity() >= 500);
        decode_all(&mut d, &wire[500..], 2000);
        assert_eq!(d.partial.capacity(), 0);
    }

    // Properties over inputs proptest makes up.

    /// Feeds `wire` cut at `cuts`; returns the frames or the error.
    fn decode_in_pieces(wire: &[u8], cuts: &[usize], max: usize) -> Result<Vec<Vec<u8>>, ()> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut decoder = FrameDecoder::new();
        let mut frames = Vec::new();
        for pair in points.windows(2) {
            decoder
                .feed(&wire[pair[0]..pair[1]], max, |p| {
                    frames.push(p.to_vec());
                    Flow::Continue
                })
                .too_large
                .map_or(Ok(()), |_| Err(()))?;
            assert!(decoder.buffered() <= max + HEADER_LEN);
        }
        Ok(frames)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_frames_cut_anywhere_decode_to_the_same_frames(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut wire = Vec::new();
            for p in &payloads {
                encode_into(&mut wire, p).unwrap();
            }
            prop_assert_eq!(decode_in_pieces(&wire, &cuts, 300), Ok(payloads));
        }

        #[test]
        fn arbitrary_bytes_never_panic_never_overbuffer_never_yield_oversized_frames(
            bytes in prop::collection::vec(any::<u8>(), 0..2000),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
            max in 0usize..600,
        ) {
            // decode_in_pieces asserts the buffer bound after every chunk.
            if let Ok(frames) = decode_in_pieces(&bytes, &cuts, max) {
                prop_assert!(frames.iter().all(|f| f.len() <= max));
            }
        }
    }
}
