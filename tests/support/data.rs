//! Deterministic test data for compression tests: noise, and a mix that exercises LZ77.

/// xorshift64: deterministic noise without a dependency.
pub fn noise(len: usize, mut x: u64) -> Vec<u8> {
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
pub fn mixed(len: usize, seed: u64) -> Vec<u8> {
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
                out.extend_from_within(start..end);
            }
        }
    }
    out.truncate(len);
    out
}

/// A repository bundle directory in `dir`: `count` Packages of `ref_name` (versions `1.0.<i>`,
/// each fetching one image by digest) under `packages/`, and an empty `.imgpkg/images.yml`.
pub fn repository_bundle(dir: &std::path::Path, ref_name: &str, count: usize) {
    std::fs::create_dir_all(dir.join("packages")).unwrap();
    std::fs::create_dir_all(dir.join(".imgpkg")).unwrap();
    for i in 0..count {
        std::fs::write(
            dir.join(format!("packages/{i}.yml")),
            format!(
                "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.1.0.{i}\nspec:\n  refName: {ref_name}\n  version: 1.0.{i}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: registry.corp.example/app@sha256:{}\n      template:\n      - ytt: {{}}\n      deploy:\n      - kapp: {{}}\n",
                "a".repeat(64)
            ),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join(".imgpkg/images.yml"),
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n",
    )
    .unwrap();
}
