//! The binary installed as `imgpkg` (a symlink of that name in a temp dir, which is also HOME),
//! run as imgpkg's own end-to-end helper runs imgpkg: every call ends with `--yes`.
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout then stderr, as imgpkg's e2e tests read them when both go to one buffer.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub struct Installed {
    pub dir: tempfile::TempDir,
}

impl Installed {
    pub fn new() -> Installed {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pkgr"), dir.path().join("imgpkg")).unwrap();
        Installed { dir }
    }

    pub fn imgpkg(&self) -> PathBuf {
        self.dir.path().join("imgpkg")
    }

    pub fn pkgr(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_pkgr"))
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    pub fn run(&self, program: &Path, args: &[&str]) -> Run {
        let out = Command::new(program)
            .args(args)
            .arg("--yes")
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join(".docker"))
            .env_remove("IMGPKG_USERNAME")
            .env_remove("IMGPKG_PASSWORD")
            .env_remove("IMGPKG_TOKEN")
            .env_remove("IMGPKG_ANON")
            .env_remove("PKGR_LOG")
            .output()
            .expect("run the binary");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `imgpkg <args>`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(&self.imgpkg(), args);
        assert!(
            run.ok,
            "imgpkg {args:?} failed:\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run
    }

    /// `imgpkg <args>`, which must fail.
    pub fn fails(&self, args: &[&str]) -> Run {
        let run = self.run(&self.imgpkg(), args);
        assert!(
            !run.ok,
            "imgpkg {args:?} succeeded:\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run
    }

    /// Push a directory holding `files` as a plain image (`-i`) or a bundle (`-b`, with an
    /// empty images.yml unless `files` has one); returns the `repo@digest` reference imgpkg printed.
    pub fn push(&self, flag: &str, reference: &str, files: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir_in(self.dir.path()).unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        if flag == "-b" && !files.iter().any(|(name, _)| *name == ".imgpkg/images.yml") {
            std::fs::create_dir_all(dir.path().join(".imgpkg")).unwrap();
            std::fs::write(
                dir.path().join(".imgpkg/images.yml"),
                "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n",
            )
            .unwrap();
        }
        let run = self.ok(&[
            "push",
            "--tty",
            flag,
            reference,
            "-f",
            dir.path().to_str().unwrap(),
        ]);
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("Pushed '"))
            .unwrap_or_else(|| panic!("no Pushed line in {}", run.stdout));
        line.trim_start_matches("Pushed '")
            .trim_end_matches('\'')
            .to_string()
    }
}
