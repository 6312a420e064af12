//! pkgr's gzip against Go's `compress/gzip` at BestSpeed, byte for byte.
//!
//! When `go` is on the PATH, a tiny Go program is compiled and both compress the same inputs;
//! without it, only the fixture (imgpkg's real layers) is checked, and the test says so.
use pkgr::bundle::gogzip::GoGzipWriter;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imgpkg-push");

/// Gzip stdin at BestSpeed, feeding the writer in chunks of argv[1] bytes.
const GO_PROGRAM: &str = r#"package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strconv"
)

func main() {
	chunk := 1 << 20
	if len(os.Args) > 1 {
		chunk, _ = strconv.Atoi(os.Args[1])
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		panic(err)
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	buf := make([]byte, chunk)
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if _, werr := zw.Write(buf[:n]); werr != nil {
				panic(werr)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	if err := out.Flush(); err != nil {
		panic(err)
	}
}
"#;

/// The compiled Go program, or None (with a note on stderr) when Go is not installed.
fn go_gzip() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!(
                "NOTE: `go` is not on the PATH, so pkgr's gzip was compared only with the \
                 imgpkg fixture, not with Go on varied inputs. Install Go (Debian: \
                 `apt-get install golang-go`) to run the differential test."
            );
            return None;
        }
        // Under the target dir, so the build cache survives between runs and no temp dir leaks.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-gzip");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.go"), GO_PROGRAM).unwrap();
        let bin = dir.join("gogzip");
        let out = Command::new("go")
            .current_dir(&dir)
            .args(["build", "-o"])
            .arg(&bin)
            .arg("main.go")
            .env("GOCACHE", dir.join("cache"))
            .env("GOPATH", dir.join("gopath"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "off")
            .output()
            .expect("run go build");
        assert!(
            out.status.success(),
            "building the Go reference program in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(bin)
    })
    .as_deref()
}

/// Go's gzip of the bytes `input` writes into a pipe, fed to the writer in `chunk`-byte writes.
/// Returns the sha256 and length of Go's output (streamed, so inputs of any size fit).
fn go_digest(bin: &Path, chunk: usize, input: impl FnOnce(&mut dyn Write) + Send) -> (String, u64) {
    let mut child = Command::new(bin)
        .arg(chunk.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the Go reference program");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (hash, len) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut hasher = Sha256::new();
            let mut len = 0u64;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = stdout.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            (hex::encode(hasher.finalize()), len)
        });
        input(&mut stdin);
        drop(stdin);
        reader.join().unwrap()
    });
    assert!(child.wait().unwrap().success(), "the Go reference program failed");
    (hash, len)
}

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

/// xorshift64: deterministic noise without a dependency.
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text, repeats at distances near and beyond the 32 KiB window, noise and runs, interleaved.
fn mixed(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    let mut out: Vec<u8> = Vec::with_capacity(len + 1024);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        match x % 5 {
            0 => out.extend_from_slice(format!("key-{}: value {} # {}\n", x % 997, x % 31, x % 7).as_bytes()),
            1 => {
                let back = (x >> 8) as usize % 33_000 + 1;
                for _ in 0..(x >> 32) % 400 {
                    let b = out.get(out.len().wrapping_sub(back)).copied().unwrap_or(b'q');
                    out.push(b);
                }
            }
            2 => out.extend(noise(((x >> 40) % 200) as usize, x | 1)),
            3 => out.extend(std::iter::repeat_n((x >> 16) as u8, ((x >> 24) % 700) as usize)),
            _ => {
                // A copy from the previous 64 KiB block, to reach across block boundaries.
                let back = 65_535 + (x >> 8) as usize % 20_000;
                let start = out.len().saturating_sub(back);
                let n = ((x >> 32) % 300) as usize;
                let end = (start + n).min(out.len());
                out.extend_from_slice(&out[start..end].to_vec());
            }
        }
    }
    out.truncate(len);
    out
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
