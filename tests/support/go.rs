//! Go's `compress/gzip` at BestSpeed as a reference: a tiny Go program, compiled once per test
//! binary under the target dir, when `go` is on the PATH.
//!
//! Without Go, a comparison is skipped and says so (on stdout and stderr); under CI (`CI` set, as
//! CI services do, or `PKGR_REQUIRE_GO=1`, as `.ci/run` sets) a missing Go fails the test instead.
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

/// The compiled Go program, or None when Go is not installed (see [`skipped`]).
pub fn go_gzip() -> Option<&'static Path> {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    if !go_on_path() {
        return skipped("go-gzip");
    }
    Some(BIN.get_or_init(|| build_go_program("go-gzip", GO_PROGRAM).expect("go is on the PATH")))
}

fn go_on_path() -> bool {
    Command::new("go").arg("version").output().is_ok()
}

/// Whether a missing Go must fail the test rather than skip the comparison: under CI (`CI` set
/// to anything but `false`/`0`/empty) or with `PKGR_REQUIRE_GO=1`.
pub fn go_required() -> bool {
    let set = |name: &str| {
        std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("CI") || set("PKGR_REQUIRE_GO")
}

/// Go is not installed: the calling test says (on stdout and stderr) that it skipped its
/// comparison with the Go program `name`, and gets None; or, when [`go_required`], it fails.
fn skipped<T>(name: &str) -> Option<T> {
    let test = std::thread::current().name().unwrap_or("this test").to_string();
    assert!(
        !go_required(),
        "`go` is not on the PATH, and under CI (CI or PKGR_REQUIRE_GO set) {test} never skips its \
         comparison with Go ({name}). Install Go (Debian: `apt-get install golang-go`)."
    );
    let note = format!(
        "SKIPPED: `go` is not on the PATH, so {test} did not compare with Go ({name}). Install Go \
         (Debian: `apt-get install golang-go`) to run it; under CI (CI or PKGR_REQUIRE_GO=1) this \
         fails instead."
    );
    println!("{note}");
    eprintln!("{note}");
    None
}

/// Compile the one-file Go program `source` under the target dir (so the build cache survives
/// between runs and no temp dir leaks), or None when Go is not installed (see [`skipped`]).
pub fn build_go_program(name: &str, source: &str) -> Option<PathBuf> {
    if !go_on_path() {
        return skipped(name);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), source).unwrap();
    let bin = dir.join(name);
    let out = Command::new("go")
        .current_dir(&dir)
        .args(["build", "-o"])
        .arg(&bin)
        .arg("main.go")
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath"))
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
}

/// Go's gzip of the bytes `input` writes into a pipe, fed to the writer in `chunk`-byte writes.
/// Returns the sha256 and length of Go's output (streamed, so inputs of any size fit).
pub fn go_digest(bin: &Path, chunk: usize, input: impl FnOnce(&mut dyn Write) + Send) -> (String, u64) {
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
