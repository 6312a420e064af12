//! The test registry harness itself: plain and TLS+auth registries start and answer /v2/.
mod support;
use support::registry::TestRegistry;

#[test]
fn plain_registry_answers_v2() {
    let reg = TestRegistry::start();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/v2/", reg.base_url()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

#[test]
fn tls_registry_requires_auth_and_trusts_its_ca() {
    let reg = TestRegistry::start_tls_auth("alice", "s3cret");
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let url = format!("{}/v2/", reg.base_url());
    let code = |extra: &[&str]| {
        let mut args = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", &ca];
        args.extend_from_slice(extra);
        args.push(&url);
        let out = std::process::Command::new("curl").args(&args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(code(&[]), "401");
    assert_eq!(code(&["-u", "alice:s3cret"]), "200");
    assert_eq!(code(&["-u", "alice:wrong"]), "401");
}
