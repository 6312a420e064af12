//! Unit tests: Go's exact bytes for the imgpkg fixture layers, round trips, and the table shift.
use super::GoGzipWriter;
use super::deflate::Compressor;
use super::fast::BUFFER_RESET;
use flate2::read::GzDecoder;
use std::io::{Read, Write};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imgpkg-push");

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = GoGzipWriter::new(Vec::new());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// Deterministic bytes: text-like runs, repeats at several distances, and noise.
fn mixed(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 4 {
            0 => out.extend_from_slice(format!("line {} value={}\n", x % 1000, x % 77).as_bytes()),
            1 => {
                let back = (x >> 8) as usize % 40_000 + 1;
                let n = (x >> 32) as usize % 300;
                for _ in 0..n {
                    let b = if out.len() >= back {
                        out[out.len() - back]
                    } else {
                        b'a'
                    };
                    out.push(b);
                }
            }
            2 => out.extend((0..(x >> 40) % 64).map(|i| (x >> (i % 56)) as u8)),
            _ => out.extend(std::iter::repeat_n(b'z', (x >> 20) as usize % 500)),
        }
    }
    out.truncate(len);
    out
}

#[test]
fn fixture_layers_are_reproduced_byte_for_byte() {
    for push in ["imgpkg-bundle", "imgpkg-image"] {
        let layer = std::fs::read(format!("{FIXTURE}/{push}/layer.tar.gz")).unwrap();
        let tar = gunzip(&layer);
        assert!(tar.len() > 2 * 65535, "the fixture spans several blocks");
        let ours = gzip(&tar);
        assert_eq!(ours.len(), layer.len(), "{push}: length differs");
        assert!(ours == layer, "{push}: bytes differ from imgpkg's layer");
    }
}

#[test]
fn empty_stream_matches_go() {
    // Go: header, the final empty stored block, CRC 0, size 0.
    let expected = [
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(gzip(&[]), expected);
}

#[test]
fn round_trips_at_every_block_path() {
    // Sizes take each branch of the final window: stored (<=16), Huffman-only (<128), and the
    // match finder; and block counts around the 65535-byte window.
    for len in [1, 16, 17, 127, 128, 1000, 65534, 65535, 65536, 3 * 65535, 200_000] {
        let data = mixed(len, len as u64 + 1);
        assert_eq!(gunzip(&gzip(&data)), data, "length {len}");
    }
    let zeros = vec![0u8; 1 << 20];
    let packed = gzip(&zeros);
    assert!(packed.len() < 10_000, "{} bytes for 1 MiB of zeros", packed.len());
    assert_eq!(gunzip(&packed), zeros);
}

#[test]
fn write_sizes_do_not_change_the_bytes() {
    let data = mixed(300_000, 7);
    let whole = gzip(&data);
    for chunk in [1, 7, 4096, 65535, 65536, 100_000] {
        let mut w = GoGzipWriter::new(Vec::new());
        for piece in data.chunks(chunk) {
            w.write_all(piece).unwrap();
        }
        assert!(w.finish().unwrap() == whole, "chunks of {chunk}");
    }
}

/// Compress with the match finder's offsets starting where Go shifts its table; the shift
/// keeps every distance in reach, so the bytes are those of a fresh compressor.
#[test]
fn table_shift_keeps_the_bytes() {
    let data = mixed(20 * 65535 + 123, 99);
    let mut fresh = Compressor::new();
    let mut shifted = Compressor::new();
    // A few blocks before the reset point, so the shift happens mid-stream with history.
    shifted.fast_mut().set_cur_for_test(BUFFER_RESET - 3 * 65535 - 17);
    let mut outputs = Vec::new();
    for c in [&mut fresh, &mut shifted] {
        let mut rest = &data[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let n = c.write_some(rest);
            rest = &rest[n..];
            out.append(&mut c.writer.out);
        }
        c.close();
        out.append(&mut c.writer.out);
        outputs.push(out);
    }
    assert!(outputs[0] == outputs[1], "the table shift changed the output");
}

#[test]
fn flush_does_not_change_the_bytes() {
    // A sync flush would add a block Go's (never flushed) writer does not write.
    let data = mixed(200_000, 3);
    let mut w = GoGzipWriter::new(Vec::new());
    for piece in data.chunks(50_000) {
        w.write_all(piece).unwrap();
        w.flush().unwrap();
    }
    assert!(w.finish().unwrap() == gzip(&data));
}

/// Accepts `left` bytes, then fails every write.
#[derive(Debug)]
struct FailAfter {
    left: usize,
}

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_breaks_the_stream_for_good() {
    let data = mixed(300_000, 4);
    let mut w = GoGzipWriter::new(FailAfter { left: 1000 });
    let err = w.write_all(&data).unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    // Later calls do not pretend to succeed on a stream with a hole in it.
    let again = w.write_all(b"more").unwrap_err();
    assert!(again.to_string().contains("earlier write error"), "{again}");
    let finish = w.finish().unwrap_err();
    assert!(finish.to_string().contains("start the layer again"), "{finish}");
}
