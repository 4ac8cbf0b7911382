//! Properties of the frame decoder, over inputs proptest makes up.

use frameloop::frame::{Flow, FrameDecoder, HEADER_LEN, encode_into};
use proptest::prelude::*;

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
            .map_err(|_| ())?;
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
