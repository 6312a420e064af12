//! At a shell, a registry error says which flag or variable fixes it, in both voices (`pkgr` and
//! `imgpkg`): the CA to trust, the credentials to give. Against a real TLS registry with Basic
//! auth (docker-registry on loopback).
mod support;

use support::imgpkg::Installed;
use support::registry::TestRegistry;

const CA_HINT: &str = "If the registry uses a private CA, pass it with --registry-ca-cert-path; \
                       --registry-verify-certs=false turns verification off (unsafe)";

fn credentials_hint(host: &str) -> String {
    format!(
        "Give credentials with --registry-username/--registry-password (or --registry-token), the \
         IMGPKG_REGISTRY_HOSTNAME/USERNAME/PASSWORD environment variables, or `docker login {host}`"
    )
}

#[test]
fn registry_errors_name_the_flags_that_fix_them_in_both_voices() {
    let reg = TestRegistry::start_tls_auth("alice", "s3cret");
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let installed = Installed::new();
    let image = reg.repo("hints/app");
    for program in [installed.pkgr(), installed.imgpkg()] {
        // No CA: what to pass to trust it.
        let run = installed.run(&program, &["tag", "list", "-i", &image]);
        assert!(!run.ok);
        assert!(run.stderr.contains(CA_HINT), "{program:?}: {}", run.stderr);
        // The CA but no credentials: how to give them.
        let run = installed.run(
            &program,
            &["tag", "list", "-i", &image, "--registry-ca-cert-path", &ca],
        );
        assert!(!run.ok);
        assert!(
            run.stderr.contains(&credentials_hint(&reg.host)),
            "{program:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("secretRef"), "{}", run.stderr);
    }
}
