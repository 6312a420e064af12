//! pkgr's gzip against Go's `compress/gzip` at BestSpeed, byte for byte.
//!
//! When `go` is on the PATH, a tiny Go program is compiled and both compress the same inputs;
//! without it, only the fixture (imgpkg's real layers) is checked, and the test says so.
mod support;
use pkgr::bundle::gogzip::GoGzipWriter;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use support::data::{mixed, noise};
use support::go::{go_digest, go_gzip};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imgpkg-push");

/// A Write that only hashes and counts.
#[derive(Default)]
struct Hashing {
    hasher: Sha256,
    len: u64,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn pkgr_digest(chunk: usize, input: impl FnOnce(&mut dyn Write)) -> (String, u64) {
    struct Chunked<'a>(&'a mut GoGzipWriter<Hashing>, usize);
    impl Write for Chunked<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for piece in buf.chunks(self.1) {
                self.0.write_all(piece)?;
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = GoGzipWriter::new(Hashing::default());
    input(&mut Chunked(&mut w, chunk));
    let out = w.finish().unwrap();
    (hex::encode(out.hasher.finalize()), out.len)
}

fn assert_same(name: &str, bin: &Path, data: &[u8], pkgr_chunk: usize, go_chunk: usize) {
    let go = go_digest(bin, go_chunk, |w| w.write_all(data).unwrap());
    let ours = pkgr_digest(pkgr_chunk, |w| w.write_all(data).unwrap());
    assert_eq!(
        ours,
        go,
        "{name} ({} bytes; pkgr writes of {pkgr_chunk}, Go writes of {go_chunk}): pkgr's gzip \
         (sha256, length) differs from Go's",
        data.len()
    );
}

#[test]
fn fixture_layers_regzip_to_imgpkgs_bytes() {
    for push in ["imgpkg-bundle", "imgpkg-image"] {
        let layer = std::fs::read(format!("{FIXTURE}/{push}/layer.tar.gz")).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut tar)
            .unwrap();
        let mut w = GoGzipWriter::new(Vec::new());
        w.write_all(&tar).unwrap();
        let ours = w.finish().unwrap();
        assert!(ours == layer, "{push}: pkgr's gzip differs from imgpkg's layer");
        if let Some(bin) = go_gzip() {
            assert_same(push, bin, &tar, 1 << 20, 32 * 1024);
        }
    }
}

#[test]
fn same_bytes_as_go_on_varied_inputs() {
    let Some(bin) = go_gzip() else { return };
    let text: Vec<u8> = std::fs::read(format!("{FIXTURE}/input/config/nums.txt")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one byte", b"x".to_vec()),
        ("16 bytes (stored)", b"0123456789abcdef".to_vec()),
        ("100 bytes (Huffman only)", mixed(100, 3)),
        ("text", text),
        ("random 300 KiB", noise(300 * 1024, 42)),
        ("repetitive 5 MiB", b"pkgr imgpkg ".repeat(5 * 1024 * 1024 / 12)),
        ("zeros 1 MiB", vec![0; 1 << 20]),
        ("mixed, one window", mixed(65_535, 5)),
        ("mixed, one window and a byte", mixed(65_536, 6)),
        ("mixed, window and a short tail", mixed(65_535 + 100, 7)),
        ("mixed 1 MiB", mixed(1 << 20, 8)),
    ];
    for (name, data) in &cases {
        assert_same(name, bin, data, 1 << 20, 1 << 20);
    }
    // Each threshold of Go's block choice, alone and as the tail after full windows: stored up
    // to 16 bytes, Huffman-only below 128, the match finder from 17 (its own literal cut-off).
    for tail in [15, 16, 17, 18, 127, 128, 129, 65_534] {
        for windows in [0, 2] {
            let data = mixed(windows * 65_535 + tail, tail as u64);
            assert_same("threshold", bin, &data, 1 << 20, 1 << 20);
        }
    }
}

#[test]
fn write_sizes_change_nothing_in_either_implementation() {
    let Some(bin) = go_gzip() else { return };
    let data = mixed(400_000, 11);
    for (ours, go) in [
        (1, 1 << 20),
        (1 << 20, 1),
        (100, 7),
        (65_535, 65_536),
        (4096, 10_000),
    ] {
        assert_same("mixed 400 KB", bin, &data, ours, go);
    }
}

/// Go moves its match table's offsets down after ~2 GiB (`bufferReset`); stream 2.2 GB, with
/// varied data around that point, through both. About 15 s in a debug build: cheap repeated
/// blocks everywhere but near the shift.
#[test]
fn same_bytes_as_go_across_the_table_shift() {
    let Some(bin) = go_gzip() else { return };
    const BLOCK: usize = 65_535;
    // The shift happens before the 32767th block; vary the content from a few blocks earlier.
    let busy = 32_760..32_775;
    let total_blocks = 33_600;
    let feed = |w: &mut dyn Write| {
        let quiet = b"0123456789abcdef".repeat(BLOCK / 16 + 2);
        for i in 0..total_blocks {
            if busy.contains(&i) {
                w.write_all(&mixed(BLOCK, i as u64 + 1)).unwrap();
            } else {
                w.write_all(&quiet[(i % 16)..(i % 16) + BLOCK]).unwrap();
            }
        }
    };
    let go = go_digest(bin, 1 << 20, feed);
    let ours = pkgr_digest(1 << 20, feed);
    assert_eq!(ours, go, "pkgr's gzip differs from Go's across the table shift");
}
