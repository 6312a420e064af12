//! The bundle layer: imgpkg's tar rules when writing; path safety, limits and whiteouts when reading.
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use pkgr::bundle::BundleError;
use pkgr::bundle::layer::{Extractor, Limits, extract_to_dir, read_to_memory, write_layer};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn write(path: &Path, contents: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut out).unwrap();
    out
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Go archive/tar's USTAR header for imgpkg's constant fields, built independently of the crate.
fn go_header(name: &str, prefix: &str, mode: u32, size: u64, typeflag: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..265].copy_from_slice(b"ustar\x0000");
    h[329..337].copy_from_slice(b"0000000\0");
    h[337..345].copy_from_slice(b"0000000\0");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    let sum: u32 = h.iter().map(|&b| b as u32).sum::<u32>() + 8 * b' ' as u32;
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// (name, typeflag, mode, size) of every entry, read straight from the raw tar bytes.
fn raw_entries(tar: &[u8]) -> Vec<(String, u8, u32, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 512 <= tar.len() && tar[pos..pos + 512].iter().any(|&b| b != 0) {
        let h = &tar[pos..pos + 512];
        let field = |r: std::ops::Range<usize>| {
            String::from_utf8(h[r].iter().take_while(|&&b| b != 0).copied().collect()).unwrap()
        };
        let name = field(0..100);
        let prefix = field(345..500);
        let full = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let mode = u32::from_str_radix(field(100..107).trim(), 8).unwrap();
        let size = u64::from_str_radix(field(124..135).trim(), 8).unwrap();
        out.push((full, h[156], mode, size));
        pos += 512 + (size as usize).div_ceil(512) * 512;
    }
    out
}

fn sample_tree(root: &Path) {
    write(&root.join(".imgpkg/images.yml"), b"images: []\n", 0o644);
    write(&root.join("a.txt"), b"hello\n", 0o644);
    write(&root.join("run.sh"), b"#!/bin/sh\n", 0o755);
    write(&root.join("config/sub/b.yml"), b"b: 1\n", 0o640);
    write(&root.join("config/a.yml"), &vec![b'x'; 1000], 0o600);
    write(&root.join("config.d/c.yml"), b"c\n", 0o600);
    write(&root.join(".git/HEAD"), b"ref\n", 0o644);
    write(&root.join("sub/.git/keep"), b"kept\n", 0o644);
}

#[test]
fn layer_follows_imgpkg_tar_rules() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let mut gz = Vec::new();
    let info = write_layer(&[dir.path().to_path_buf()], &[".git".to_string()], &mut gz).unwrap();
    let tar = gunzip(&gz);

    // Lexical walk as Go's filepath.Walk (each directory sorted, depth first), `.` first, the
    // top-level .git excluded by exact path while sub/.git stays.
    let entries = raw_entries(&tar);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            ".",
            ".imgpkg",
            ".imgpkg/images.yml",
            "a.txt",
            "config",
            "config/a.yml",
            "config/sub",
            "config/sub/b.yml",
            "config.d",
            "config.d/c.yml",
            "run.sh",
            "sub",
            "sub/.git",
            "sub/.git/keep",
        ]
    );
    // Dirs 0700 type 5, files mode & 0700 type 0.
    for (name, typeflag, mode, size) in &entries {
        let is_dir = fs::metadata(dir.path().join(name)).unwrap().is_dir();
        if is_dir {
            assert_eq!((*typeflag, *mode, *size), (b'5', 0o700, 0), "{name}");
        } else {
            let source_mode = fs::metadata(dir.path().join(name)).unwrap().permissions().mode();
            assert_eq!((*typeflag, *mode), (b'0', source_mode & 0o700), "{name}");
        }
    }
    assert_eq!(entries.iter().find(|e| e.0 == "run.sh").unwrap().2, 0o700);
    assert_eq!(
        entries.iter().find(|e| e.0 == "config/sub/b.yml").unwrap().2,
        0o600
    );

    // Exact header bytes, as Go writes them.
    assert_eq!(&tar[..512], go_header(".", "", 0o700, 0, b'5').as_slice());
    let imgpkg_dir = go_header(".imgpkg", "", 0o700, 0, b'5');
    assert_eq!(&tar[512..1024], imgpkg_dir.as_slice());
    assert_eq!(
        &tar[1024..1536],
        go_header(".imgpkg/images.yml", "", 0o600, 11, b'0').as_slice()
    );
    assert_eq!(&tar[1536..1547], b"images: []\n");
    assert!(tar[1547..2048].iter().all(|&b| b == 0));

    // Two zero blocks and no padding to a 10 KiB record.
    let data: usize = entries
        .iter()
        .map(|e| 512 + (e.3 as usize).div_ceil(512) * 512)
        .sum();
    assert_eq!(tar.len(), data + 1024);
    assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));

    // The gzip header Go's compress/gzip writes at BestSpeed: no name, mtime 0, XFL 4, OS 255.
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]);

    // Digests: diff_id of the tar, digest and size of the gzip.
    assert_eq!(info.diff_id.as_str(), sha(&tar));
    assert_eq!(info.digest.as_str(), sha(&gz));
    assert_eq!(info.size, gz.len() as u64);

    // Deterministic.
    let mut again = Vec::new();
    let info2 = write_layer(&[dir.path().to_path_buf()], &[".git".to_string()], &mut again).unwrap();
    assert_eq!(gz, again);
    assert_eq!(info, info2);
}

#[test]
fn long_names_use_the_ustar_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let long_dir = format!("{}/{}", "d".repeat(60), "e".repeat(60));
    let rel = format!("{long_dir}/file.yml");
    write(&dir.path().join(&rel), b"x", 0o600);
    let mut gz = Vec::new();
    write_layer(&[dir.path().to_path_buf()], &[], &mut gz).unwrap();
    let tar = gunzip(&gz);
    let entries = raw_entries(&tar);
    assert_eq!(entries.last().unwrap().0, rel);
    // The file header: name "file.yml" and the directories in the prefix field.
    let header_at = tar.len() - 1024 - 1024;
    assert_eq!(
        &tar[header_at..header_at + 512],
        go_header("file.yml", &long_dir, 0o600, 1, b'0').as_slice()
    );
    // And the crate reads back what it wrote.
    let files = read_to_memory(gz.as_slice(), &Limits::default()).unwrap();
    assert_eq!(files[&rel], b"x");
}

#[test]
fn names_too_long_for_ustar_round_trip_through_pax() {
    let dir = tempfile::tempdir().unwrap();
    let rel = format!("{}/{}", "p".repeat(20), "n".repeat(130));
    write(&dir.path().join(&rel), b"pax", 0o600);
    let mut gz = Vec::new();
    write_layer(&[dir.path().to_path_buf()], &[], &mut gz).unwrap();
    let files = read_to_memory(gz.as_slice(), &Limits::default()).unwrap();
    assert_eq!(files[&rel], b"pax");
}

#[test]
fn several_inputs_single_files_and_duplicates() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(&a.path().join("x.yml"), b"x", 0o644);
    write(&b.path().join("y.yml"), b"y", 0o644);
    let single = b.path().join("y.yml");
    let mut gz = Vec::new();
    write_layer(&[a.path().to_path_buf(), single.clone()], &[], &mut gz).unwrap();
    let entries = raw_entries(&gunzip(&gz));
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, [".", "x.yml", "y.yml"]);

    // Two `-f` dirs each get a `.` entry.
    let mut gz = Vec::new();
    write_layer(&[a.path().to_path_buf(), b.path().to_path_buf()], &[], &mut gz).unwrap();
    let names: Vec<String> = raw_entries(&gunzip(&gz)).into_iter().map(|e| e.0).collect();
    assert_eq!(names, [".", "x.yml", ".", "y.yml"]);

    // The same file from two inputs is refused.
    let err = write_layer(&[b.path().to_path_buf(), single], &[], Vec::new()).unwrap_err();
    assert!(matches!(err, BundleError::Input(_)), "{err}");
    assert!(
        err.to_string().contains("duplicate paths") && err.to_string().contains("y.yml"),
        "{err}"
    );
}

#[test]
fn symlinks_and_missing_inputs_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("real.yml"), b"r", 0o644);
    std::os::unix::fs::symlink("real.yml", dir.path().join("link.yml")).unwrap();
    let err = write_layer(&[dir.path().to_path_buf()], &[], Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("link.yml") && err.to_string().contains("regular file"),
        "{err}"
    );

    let missing = dir.path().join("nope");
    let err = write_layer(&[missing], &[], Vec::new()).unwrap_err();
    assert!(
        matches!(err, BundleError::Io { ref path, .. } if path.ends_with("nope")),
        "{err}"
    );
}

#[test]
fn custom_exclusions_match_the_relative_path_only() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("skip/a"), b"a", 0o644);
    write(&dir.path().join("keep/skip/b"), b"b", 0o644);
    let mut gz = Vec::new();
    write_layer(&[dir.path().to_path_buf()], &["skip".into()], &mut gz).unwrap();
    let files = read_to_memory(gz.as_slice(), &Limits::default()).unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["keep/skip/b"]);
}

#[test]
fn write_then_read_round_trips_contents() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&dir.path().join("data/big.bin"), &big, 0o644);
    let mut gz = Vec::new();
    write_layer(&[dir.path().to_path_buf()], &[".git".into()], &mut gz).unwrap();
    let files = read_to_memory(gz.as_slice(), &Limits::default()).unwrap();
    assert_eq!(files["data/big.bin"], big);
    assert_eq!(files["config/sub/b.yml"], b"b: 1\n");
    assert_eq!(files[".imgpkg/images.yml"], b"images: []\n");
    assert!(!files.contains_key(".git/HEAD"));
    assert_eq!(files["sub/.git/keep"], b"kept\n");
    assert_eq!(files.len(), 8);
}

// ----- hostile layers -------------------------------------------------------------------------

/// A raw tar entry with any name and type (the tar crate's builder would refuse the bad ones).
fn entry(name: &str, typeflag: u8, data: &[u8], mode: u32) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    {
        let bytes = h.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(typeflag));
    h.set_mtime(1_600_000_000);
    if typeflag == b'2' || typeflag == b'1' {
        h.set_link_name("target").unwrap();
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn layer(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut tar: Vec<u8> = entries.concat();
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn read_err(entries: &[Vec<u8>]) -> BundleError {
    read_to_memory(layer(entries).as_slice(), &Limits::default()).unwrap_err()
}

#[test]
fn unsafe_entries_are_rejected_naming_entry_and_rule() {
    let cases: &[(&str, u8, &str)] = &[
        ("/etc/passwd", b'0', "absolute"),
        ("\\windows\\x", b'0', "absolute"),
        ("C:/x", b'0', "absolute"),
        ("../escape", b'0', "'..'"),
        ("a/../../escape", b'0', "'..'"),
        ("a\\..\\..\\escape", b'0', "'..'"),
        ("link", b'2', "symbolic links"),
        ("hard", b'1', "hard links"),
        ("tty", b'3', "device"),
        ("disk", b'4', "device"),
        ("pipe", b'6', "FIFO"),
    ];
    for (name, typeflag, rule) in cases {
        let err = read_err(&[
            entry("ok.yml", b'0', b"ok", 0o644),
            entry(name, *typeflag, b"", 0o644),
        ]);
        match &err {
            BundleError::UnsafeEntry { entry, rule: r } => {
                assert_eq!(entry, name);
                assert!(r.contains(rule), "{name}: {r}");
            }
            other => panic!("{name}: expected UnsafeEntry, got {other}"),
        }
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        // The same rules apply when extracting to disk, and nothing escapes.
        let dest = tempfile::tempdir().unwrap();
        let out = dest.path().join("out");
        fs::create_dir(&out).unwrap();
        let bytes = layer(&[entry(name, *typeflag, b"", 0o644)]);
        assert!(
            extract_to_dir(bytes.as_slice(), &out, &Limits::default()).is_err(),
            "{name}"
        );
        assert!(!dest.path().join("escape").exists());
    }
}

#[test]
fn dot_prefixes_and_backslashes_are_accepted() {
    let files = read_to_memory(
        layer(&[
            entry("./", b'5', b"", 0),
            entry("./a/b.yml", b'0', b"b", 0o644),
            entry("a\\c.yml", b'0', b"c", 0o644),
            entry("./././d.yml", b'0', b"d", 0o644),
        ])
        .as_slice(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["a/b.yml", "a/c.yml", "d.yml"]);
}

#[test]
fn limits_on_bytes_files_and_depth() {
    let limits = Limits {
        max_bytes: 10,
        max_files: 2,
        max_depth: 3,
    };
    let ok = layer(&[
        entry("a/b/c", b'0', b"12345", 0o644),
        entry("d", b'0', b"12345", 0o644),
    ]);
    assert_eq!(read_to_memory(ok.as_slice(), &limits).unwrap().len(), 2);

    let too_big = layer(&[
        entry("a", b'0', b"123456", 0o644),
        entry("b", b'0', b"12345", 0o644),
    ]);
    let err = read_to_memory(too_big.as_slice(), &limits).unwrap_err();
    assert!(
        matches!(&err, BundleError::LimitExceeded { entry: Some(e), .. } if e == "b"),
        "{err}"
    );
    assert!(err.to_string().contains("10 uncompressed bytes"), "{err}");

    let too_many = layer(&[
        entry("a", b'0', b"", 0o644),
        entry("b", b'0', b"", 0o644),
        entry("c", b'0', b"", 0o644),
    ]);
    let err = read_to_memory(too_many.as_slice(), &limits).unwrap_err();
    assert!(
        err.to_string().contains("2 files") && err.to_string().contains("\"c\""),
        "{err}"
    );

    // Directories count too: creating them is work, whatever their size.
    let many_dirs = layer(&[
        entry("a/", b'5', b"", 0o755),
        entry("b/", b'5', b"", 0o755),
        entry("c/", b'5', b"", 0o755),
    ]);
    let err = read_to_memory(many_dirs.as_slice(), &limits).unwrap_err();
    assert!(
        err.to_string().contains("2 files and directories") && err.to_string().contains("\"c/\""),
        "{err}"
    );

    // A huge PAX header (held in memory by the tar reader) is stopped by the decompressed cap.
    let bomb = layer(&[
        entry("pax", b'x', &vec![b'#'; 3 << 20], 0o644),
        entry("f", b'0', b"x", 0o644),
    ]);
    let err = read_to_memory(bomb.as_slice(), &limits).unwrap_err();
    assert!(
        matches!(err, BundleError::LimitExceeded { .. }) && err.to_string().contains("decompressed bytes"),
        "{err}"
    );

    let too_deep = layer(&[entry("a/b/c/d", b'0', b"", 0o644)]);
    let err = read_to_memory(too_deep.as_slice(), &limits).unwrap_err();
    assert!(err.to_string().contains("path depth 3"), "{err}");

    let defaults = Limits::default();
    assert_eq!(
        (defaults.max_bytes, defaults.max_files, defaults.max_depth),
        (256 << 20, 100_000, 64)
    );
}

#[test]
fn garbage_is_a_corrupt_layer_error() {
    let err = read_to_memory(&b"definitely not gzip"[..], &Limits::default()).unwrap_err();
    assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
    // A truncated gzip stream is caught too.
    let full = layer(&[entry("a", b'0', &[7u8; 5000], 0o644)]);
    let err = read_to_memory(&full[..full.len() / 2], &Limits::default()).unwrap_err();
    assert!(matches!(err, BundleError::Corrupt { .. }), "{err}");
}

#[test]
fn extract_ignores_dir_modes_and_applies_imgpkg_file_modes() {
    let dest = tempfile::tempdir().unwrap();
    let bytes = layer(&[
        entry("locked", b'5', b"", 0o000),
        entry("locked/inner/f.yml", b'0', b"f", 0o600),
        entry("g.sh", b'0', b"g", 0o755),
        entry("h", b'0', b"h", 0o640),
    ]);
    extract_to_dir(bytes.as_slice(), dest.path(), &Limits::default()).unwrap();
    let f = dest.path().join("locked/inner/f.yml");
    assert_eq!(fs::read(&f).unwrap(), b"f");
    // 0600 has no group/other bits: imgpkg copies the user bits to them (then the umask applies),
    // exactly like creating a file with 0666.
    let probe = dest.path().join("probe");
    {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&probe)
            .unwrap();
    }
    let umasked_666 = fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        umasked_666
    );
    let g = fs::metadata(dest.path().join("g.sh"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(g & 0o700, 0o700);
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    assert_eq!(
        mtime.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        1_600_000_000
    );
}

#[test]
fn whiteouts_cannot_reach_the_directory_or_its_parent() {
    for name in [".wh...", ".wh..", "sub/.wh...", "sub/.wh.."] {
        let root = tempfile::tempdir().unwrap();
        let sibling = root.path().join("keep.txt");
        fs::write(&sibling, b"outside the pull directory").unwrap();
        let dest = root.path().join("out");
        fs::create_dir_all(dest.join("sub")).unwrap();
        fs::write(dest.join("sub/file"), b"x").unwrap();
        let err = Extractor::new(&dest, Limits::default())
            .apply_layer(layer(&[entry(name, b'0', b"", 0o644)]).as_slice())
            .unwrap_err();
        assert!(
            matches!(&err, BundleError::UnsafeEntry { rule, .. } if rule.contains("whiteout")),
            "{name}: {err}"
        );
        assert!(sibling.exists(), "{name}: the parent directory is untouched");
        assert!(
            dest.join("sub/file").exists(),
            "{name}: the directory is untouched"
        );
    }
}

#[test]
fn layers_apply_in_order_with_whiteouts() {
    let dest = tempfile::tempdir().unwrap();
    let mut extractor = Extractor::new(dest.path(), Limits::default());
    extractor
        .apply_layer(
            layer(&[
                entry("a/x", b'0', b"x1", 0o644),
                entry("a/y", b'0', b"y1", 0o644),
                entry("b/z", b'0', b"z1", 0o644),
                entry("b/deep/w", b'0', b"w1", 0o644),
                entry("c/gone/q", b'0', b"q", 0o644),
            ])
            .as_slice(),
        )
        .unwrap();
    extractor
        .apply_layer(
            layer(&[
                entry("a/.wh.x", b'0', b"", 0o644),
                entry("a/y", b'0', b"y2", 0o644),
                entry("b/new", b'0', b"n2", 0o644),
                entry("b/.wh..wh..opq", b'0', b"", 0o644),
                entry("c/.wh.gone", b'0', b"", 0o644),
            ])
            .as_slice(),
        )
        .unwrap();
    let mut found = Vec::new();
    collect(dest.path(), dest.path(), &mut found);
    found.sort();
    assert_eq!(found, ["a/y", "b/new"]);
    assert_eq!(fs::read(dest.path().join("a/y")).unwrap(), b"y2");
    assert!(dest.path().join("c").is_dir());
    assert!(!dest.path().join("c/gone").exists());
}

#[test]
fn pull_extraction_skips_links_and_devices_like_imgpkg() {
    let entries = [
        entry("bin/tool", b'0', b"#!/bin/sh\n", 0o755),
        entry("bin/alias", b'2', b"", 0o777),
        entry("bin/hard", b'1', b"", 0o755),
        entry("dev/tty", b'3', b"", 0o600),
        entry("dev/disk", b'4', b"", 0o600),
        entry("run/pipe", b'6', b"", 0o600),
        entry("etc/conf", b'0', b"k=v", 0o644),
    ];
    let dest = tempfile::tempdir().unwrap();
    let mut extractor = Extractor::new(dest.path(), Limits::default()).skipping_links_and_devices();
    extractor.apply_layer(layer(&entries).as_slice()).unwrap();
    assert_eq!(
        extractor.take_skipped(),
        [
            "bin/alias -> target",
            "bin/hard -> target",
            "dev/tty",
            "dev/disk",
            "run/pipe"
        ]
    );
    assert!(extractor.take_skipped().is_empty(), "taken once, per layer");
    let mut found = Vec::new();
    collect(dest.path(), dest.path(), &mut found);
    found.sort();
    assert_eq!(
        found,
        ["bin/tool", "etc/conf"],
        "nothing is created for skipped entries"
    );

    // Path rules still hold for the entries that are written.
    let err = Extractor::new(dest.path(), Limits::default())
        .skipping_links_and_devices()
        .apply_layer(layer(&[entry("../escape", b'0', b"x", 0o644)]).as_slice())
        .unwrap_err();
    assert!(matches!(err, BundleError::UnsafeEntry { .. }), "{err}");
    // Without the opt-in (the controller, render), the first link is refused.
    let err = Extractor::new(tempfile::tempdir().unwrap().path(), Limits::default())
        .apply_layer(layer(&entries).as_slice())
        .unwrap_err();
    assert!(err.to_string().contains("\"bin/alias\""), "{err}");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p: PathBuf = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
        }
    }
}

/// The diff id Go's archive/tar produces for [`golden_tree`] when driven with imgpkg's
/// createTarball rules (filepath.Walk, `.` root, 0700 dirs, `mode & 0700` files, zero mtime,
/// top-level `.git` skipped). Generated once with Go 1.19; it covers USTAR prefix splitting and
/// the PAX headers Go writes for non-ASCII and over-long names.
const GO_DIFF_ID: &str = "sha256:5e756e87e9025f9aaca09efdaa61131d41f7ea3d230d7167496434f459d8700f";

fn golden_tree(root: &Path) {
    let blob: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let long = format!("long/{}/{}/file.yml", "d".repeat(90), "e".repeat(70));
    let pax = format!("{}/{}", "p".repeat(20), "n".repeat(130));
    let files: Vec<(&str, &[u8], u32)> = vec![
        (
            ".imgpkg/images.yml",
            b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n",
            0o644,
        ),
        ("config/a.yml", b"a: 1\n", 0o640),
        ("config/sub/run.sh", b"#!/bin/sh\n", 0o755),
        ("config.d/c.yml", b"c\n", 0o600),
        (".git/HEAD", b"ref\n", 0o644),
        ("vendor/.git/x", b"v\n", 0o644),
        (&long, b"deep\n", 0o644),
        ("\u{fc}n\u{ef}code.yml", b"u\n", 0o644),
        (&pax, b"l\n", 0o644),
        ("data/blob.bin", &blob, 0o644),
    ];
    for (path, contents, mode) in files {
        write(&root.join(path), contents, mode);
    }
}

#[test]
fn tar_is_byte_identical_to_go_archive_tar_under_imgpkg_rules() {
    let dir = tempfile::tempdir().unwrap();
    golden_tree(dir.path());
    let mut gz = Vec::new();
    let info = write_layer(&[dir.path().to_path_buf()], &[".git".to_string()], &mut gz).unwrap();
    assert_eq!(gunzip(&gz).len(), 18944);
    assert_eq!(info.diff_id.as_str(), GO_DIFF_ID);
}
