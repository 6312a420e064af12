//! `imgpkg describe` (the binary installed as imgpkg) against a real registry: a bundle with a
//! nested bundle and an image, before and after `copy --to-repo`.
mod support;

use std::path::Path;
use std::process::Command;
use support::registry::TestRegistry;

struct Installed {
    dir: tempfile::TempDir,
}

impl Installed {
    fn new() -> Installed {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pkgr"), dir.path().join("imgpkg")).unwrap();
        Installed { dir }
    }

    /// `imgpkg ARGS --yes`: (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(self.dir.path().join("imgpkg"))
            .args(args)
            .arg("--yes")
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join(".docker"))
            .env_remove("IMGPKG_USERNAME")
            .env_remove("IMGPKG_PASSWORD")
            .env_remove("IMGPKG_TOKEN")
            .output()
            .expect("run imgpkg");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "imgpkg {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    /// Push `dir` and return the pushed digest.
    fn push(&self, flag: &str, target: &str, dir: &Path) -> String {
        let out = self.ok(&["push", "--tty", flag, target, "-f", dir.to_str().unwrap()]);
        let line = out.lines().find(|l| l.starts_with("Pushed '")).unwrap();
        line.split('@').nth(1).unwrap().trim_end_matches('\'').to_string()
    }
}

fn bundle_dir(images: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n");
    for (image, what) in images {
        yaml.push_str(&format!(
            "- image: {image}\n  annotations:\n    what is this: {what}\n"
        ));
    }
    std::fs::create_dir_all(dir.path().join(".imgpkg")).unwrap();
    std::fs::write(dir.path().join(".imgpkg/images.yml"), yaml).unwrap();
    dir
}

#[test]
fn describe_a_nested_bundle_before_and_after_copy() {
    let reg = TestRegistry::start();
    let imgpkg = Installed::new();
    let content = tempfile::tempdir().unwrap();
    std::fs::write(content.path().join("app.txt"), b"describe me").unwrap();
    let img_repo = reg.repo("src/img1");
    let img = format!(
        "{img_repo}@{}",
        imgpkg.push("-i", &format!("{img_repo}:v1"), content.path())
    );

    let nested_repo = reg.repo("src/nested");
    let nested_dir = bundle_dir(&[(&img, "an image of the nested bundle")]);
    let nested_digest = imgpkg.push("-b", &format!("{nested_repo}:v1"), nested_dir.path());
    let nested = format!("{nested_repo}@{nested_digest}");

    let outer_repo = reg.repo("src/outer");
    let outer_dir = bundle_dir(&[(&nested, "the nested bundle"), (&img, "just an image")]);
    let outer_digest = imgpkg.push("-b", &format!("{outer_repo}:v1"), outer_dir.path());

    // A cosign-style signature of the image: any image at the `sha256-<hex>.sig` tag.
    let signature = tempfile::tempdir().unwrap();
    std::fs::write(signature.path().join("sig.json"), b"{\"signed\":true}").unwrap();
    let sig_tag = format!("{}.sig", img.split_once('@').unwrap().1.replace(':', "-"));
    let sig_digest = imgpkg.push("-i", &format!("{img_repo}:{sig_tag}"), signature.path());
    let sig_entry = format!(
        "  - Image: {img_repo}@{sig_digest}\n    Type: Signature\n    Annotations:\n      tag: {sig_tag}\n"
    );

    // Not relocated: every entry is where its ImagesLock says. Entries are ordered by digest
    // (imgpkg's order is its map's), so each is checked on its own.
    // imgpkg lists layers unless told not to (checked below); these entries are without them.
    let out = imgpkg.ok(&[
        "describe",
        "--tty",
        "-b",
        &format!("{outer_repo}:v1"),
        "--layers=false",
    ]);
    assert!(
        out.starts_with(&format!("Bundle SHA: {outer_digest}\n\nImages:\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  - Image: {nested}\n    Type: Bundle\n    Origin: {nested}\n    Annotations:\n      what is this: the nested bundle\n    Images:\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  - Image: {img}\n    Type: Image\n    Origin: {img}\n    Annotations:\n      what is this: just an image\n"
        )),
        "{out}"
    );
    assert!(
        !out.contains("Internal"),
        "no locations image before a copy: {out}"
    );
    assert!(
        out.contains(&format!(
            "    - Image: {img}\n      Type: Image\n      Origin: {img}\n      Annotations:\n        what is this: an image of the nested bundle\n"
        )),
        "the nested bundle's image, one level deeper: {out}"
    );
    assert!(out.contains(&sig_entry), "{out}");
    let unsigned = imgpkg.ok(&[
        "describe",
        "-b",
        &format!("{outer_repo}:v1"),
        "--cosign-artifacts=false",
    ]);
    assert!(!unsigned.contains("Signature"), "{unsigned}");
    // By default, as imgpkg: every entry lists its layers.
    assert!(
        unsigned.contains(&format!(
            "  - Image: {nested}\n    Type: Bundle\n    Origin: {nested}\n    Layers:\n      - Digest: sha256:"
        )),
        "{unsigned}"
    );
    assert!(out.ends_with("\nSucceeded\n"), "{out}");
    // A signature lists its layers too, as every image imgpkg describes does.
    let with_layers = imgpkg.ok(&["describe", "-b", &format!("{outer_repo}:v1")]);
    assert!(
        with_layers.contains(&format!(
            "  - Image: {img_repo}@{sig_digest}\n    Type: Signature\n    Layers:\n      - Digest: sha256:"
        )),
        "{with_layers}"
    );

    // After a copy: everything in the destination repository, origins kept, locations images listed.
    let dst = reg.repo("dst/bundle");
    let copy = imgpkg.ok(&[
        "copy",
        "--tty",
        "-b",
        &format!("{outer_repo}@{outer_digest}"),
        "--to-repo",
        &dst,
    ]);
    // imgpkg's narration of the copy, on stdout.
    let lines: Vec<&str> = copy.lines().collect();
    assert_eq!(lines[0], "copy | exporting 3 images...", "{copy}");
    assert!(
        lines.contains(&format!("copy | will export {outer_repo}@{outer_digest}").as_str()),
        "{copy}"
    );
    assert!(lines.contains(&"copy | exported 3 images"), "{copy}");
    assert!(lines.contains(&"copy | importing 3 images..."), "{copy}");
    assert!(copy.ends_with("copy | Tagging images\n\nSucceeded\n"), "{copy}");
    let out = imgpkg.ok(&[
        "describe",
        "-b",
        &format!("{dst}@{outer_digest}"),
        "--layers=false",
    ]);
    let img_digest = img.split_once('@').unwrap().1;
    assert!(
        out.contains(&format!(
            "  - Image: {dst}@{nested_digest}\n    Type: Bundle\n    Origin: {nested}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "    - Image: {dst}@{img_digest}\n      Type: Image\n      Origin: {img}\n"
        )),
        "{out}"
    );
    assert_eq!(
        out.matches("Type: Internal").count(),
        2,
        "one locations image per bundle: {out}"
    );

    // --layers lists the image's one layer, by digest alone (imgpkg prints no sizes).
    let out = imgpkg.ok(&[
        "describe",
        "-b",
        &format!("{dst}@{outer_digest}"),
        "--layers",
        "-o",
        "yaml",
    ]);
    let yaml: serde_json::Value = serde_saphyr::from_str(out.split_once('\n').unwrap().1).unwrap();
    let entry = &yaml["content"]["images"][img_digest];
    assert_eq!(entry["imageType"], "Image", "{out}");
    assert_eq!(entry["origin"], img.as_str(), "{out}");
    assert_eq!(entry["layers"].as_array().unwrap().len(), 1, "{out}");
    assert!(entry.get("size").is_none(), "{out}");
    let layer = &entry["layers"][0];
    assert!(layer["digest"].as_str().unwrap().starts_with("sha256:"), "{out}");
    assert_eq!(layer.as_object().unwrap().len(), 1, "{out}");
    assert_eq!(
        yaml["content"]["bundles"][&nested_digest]["origin"],
        nested.as_str()
    );
    // The locations image lists its one layer as well.
    let internal: Vec<&serde_json::Value> = yaml["content"]["images"]
        .as_object()
        .unwrap()
        .values()
        .filter(|i| i["imageType"] == "Internal")
        .collect();
    assert_eq!(internal.len(), 1, "{out}");
    assert_eq!(internal[0]["layers"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(out.starts_with(&format!("sha: {outer_digest}\n")), "{out}");

    // A plain image is refused, in imgpkg's words.
    let (ok, _, stderr) = imgpkg.run(&["describe", "-b", &img]);
    assert!(!ok);
    assert!(stderr.contains("Only bundles can be described"), "{stderr}");
}
