//! Throughput of pkgr's Go-compatible gzip against flate2 (miniz_oxide) at level 1, on 100 MiB
//! of mixed data. A measurement, not a timed assertion: run `bench/gzip-speed.sh`.
mod support;
use flate2::Compression;
use flate2::write::GzEncoder;
use pkgr::bundle::gogzip::GoGzipWriter;
use std::io::Write;
use std::time::{Duration, Instant};
use support::data::{mixed, noise};
use support::go::{go_digest, go_gzip};

/// Counts what is written, so no output buffer skews the timing.
#[derive(Default)]
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// 100 MiB in 1 MiB pieces: 40% LZ77-friendly mix, 30% YAML-like text, 20% incompressible
/// (binaries, images), 10% zeros, interleaved as files in a tar would be.
fn corpus() -> Vec<u8> {
    let mut out = Vec::with_capacity(100 << 20);
    for i in 0..100u64 {
        match i % 10 {
            0..=3 => out.extend(mixed(1 << 20, i + 1)),
            4..=6 => {
                let mut text = Vec::with_capacity((1 << 20) + 64);
                let mut n = i * 1_000_003;
                while text.len() < 1 << 20 {
                    n = n.wrapping_mul(6364136223846793005).wrapping_add(1);
                    text.extend_from_slice(
                        format!(
                            "  - name: pkg-{}\n    version: 1.{}.{}\n",
                            n % 5000,
                            n % 17,
                            n % 9
                        )
                        .as_bytes(),
                    );
                }
                text.truncate(1 << 20);
                out.extend(text);
            }
            7 | 8 => out.extend(noise(1 << 20, i + 7)),
            _ => out.extend(std::iter::repeat_n(0u8, 1 << 20)),
        }
    }
    out
}

fn measure(name: &str, data: &[u8], run: impl Fn(&[u8]) -> u64) {
    // Best of three: the machine is shared, the minimum is the least disturbed run.
    let mut best = Duration::MAX;
    let mut size = 0;
    for _ in 0..3 {
        let start = Instant::now();
        size = run(data);
        best = best.min(start.elapsed());
    }
    let mib = data.len() as f64 / (1 << 20) as f64;
    println!(
        "{name:<28} {:>8.1} MiB/s  {:>7.3} s  output {:>10} bytes ({:.1}% of input)",
        mib / best.as_secs_f64(),
        best.as_secs_f64(),
        size,
        100.0 * size as f64 / data.len() as f64
    );
}

#[test]
#[ignore = "a benchmark: run bench/gzip-speed.sh (release build)"]
fn gzip_speed_against_flate2_level_1() {
    let data = corpus();
    println!("{} MiB of mixed data, 64 KiB writes", data.len() >> 20);
    measure("pkgr GoGzipWriter", &data, |d| {
        let mut w = GoGzipWriter::new(Count::default());
        for piece in d.chunks(64 << 10) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap().0
    });
    measure("flate2 GzEncoder level 1", &data, |d| {
        let mut w = GzEncoder::new(Count::default(), Compression::fast());
        for piece in d.chunks(64 << 10) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap().0
    });
    if let Some(bin) = go_gzip() {
        // Includes the pipe to and from the Go process and hashing its output.
        measure("Go compress/gzip (piped)", &data, |d| {
            go_digest(bin, 64 << 10, |w| {
                for piece in d.chunks(64 << 10) {
                    w.write_all(piece).unwrap();
                }
            })
            .1
        });
    }
}
