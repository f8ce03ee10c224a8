use super::*;
use crate::{TcpTransport, Validity};
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, PartyId};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The issue's example, exactly.
const EXAMPLE: &str = "\
ca: certs/ca.pem
parties:
  alice:  { address: 127.0.0.1:7101, cert: certs/alice.pem,  key: certs/alice.key }
  bob:    { address: 127.0.0.1:7102, cert: certs/bob.pem,    key: certs/bob.key }
  dealer: { address: 127.0.0.1:7100, cert: certs/dealer.pem, key: certs/dealer.key }
";

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mpcflow-tcp-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn err(text: &str) -> String {
    match Deployment::from_yaml(text, Path::new("conf/parties.yaml")) {
        Ok(d) => panic!("expected an error, got {d:?}"),
        Err(e) => e.to_string(),
    }
}

fn has(message: &str, needles: &[&str]) {
    for n in needles {
        assert!(message.contains(n), "`{n}` missing from: {message}");
    }
}

#[test]
fn the_issues_example_parses_with_paths_relative_to_the_file() {
    let d = Deployment::from_yaml(EXAMPLE, Path::new("conf/parties.yaml")).unwrap();
    assert_eq!(d.file, Path::new("conf/parties.yaml"));
    assert_eq!(d.ca, Path::new("conf/certs/ca.pem"));
    assert_eq!(d.endpoints.keys().collect::<Vec<_>>(), ["alice", "bob", "dealer"]);
    let bob = &d.endpoints["bob"];
    assert_eq!(bob.address, "127.0.0.1:7102");
    assert_eq!(bob.cert, Path::new("conf/certs/bob.pem"));
    assert_eq!(bob.key, Path::new("conf/certs/bob.key"));
    // A file in the working directory; absolute paths stay as they are.
    let d =
        Deployment::from_yaml(&EXAMPLE.replace("certs/ca.pem", "/etc/mpcflow/ca.pem"), Path::new("p.yaml")).unwrap();
    assert_eq!(d.ca, Path::new("/etc/mpcflow/ca.pem"));
    assert_eq!(d.endpoints["alice"].cert, Path::new("certs/alice.pem"));
    // Block style and host names work too.
    let block = "ca: ca.pem\nparties:\n  north:\n    address: hospital-a.example.org:7101\n    cert: north.pem\n    \
                 key: north.key\n";
    let d = Deployment::from_yaml(block, Path::new("d/p.yaml")).unwrap();
    assert_eq!(d.endpoints["north"].address, "hospital-a.example.org:7101");
}

#[test]
fn unknown_and_missing_fields_are_named_with_line_column_and_endpoint() {
    has(&err(&format!("{EXAMPLE}extra: 1\n")), &["conf/parties.yaml:6:1:", "unknown field `extra`"]);
    has(
        &err(&EXAMPLE.replace("address: 127.0.0.1:7102", "adress: 127.0.0.1:7102")),
        &["conf/parties.yaml:4:13:", "endpoint `bob`", "unknown field `adress`", "address"],
    );
    has(
        &err(&EXAMPLE.replace(",    key: certs/bob.key", "")),
        &["conf/parties.yaml:4:11:", "endpoint `bob`", "missing required field `key`"],
    );
    has(&err(&EXAMPLE.replace("ca: certs/ca.pem\n", "")), &["conf/parties.yaml:1:1:", "missing required field `ca`"]);
    has(&err("ca: x\nparties: {}\n"), &["conf/parties.yaml:2:10:", "lists no endpoint"]);
    // Values of the wrong shape are placed in their endpoint too.
    has(
        &err(&EXAMPLE.replace("cert: certs/bob.pem", "cert: [a, b]")),
        &["conf/parties.yaml:4:44:", "endpoint `bob`", "expected a single value"],
    );
    has(
        &err(&EXAMPLE.replace("{ address: 127.0.0.1:7102, cert: certs/bob.pem,    key: certs/bob.key }", "x")),
        &["conf/parties.yaml:4:11:", "endpoint `bob`", "expected a mapping"],
    );
    has(&err(&EXAMPLE.replace("key: certs/alice.key", "key:")), &["conf/parties.yaml:3:", "endpoint `alice`"]);
    has(&err("ca: [x\n"), &["conf/parties.yaml:1:"]);
}

#[test]
fn bad_addresses_are_refused_at_their_place() {
    for (address, needle) in [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:x", "port `x`"),
        ("127.0.0.1:70000", "port `70000`"),
        ("127.0.0.1:0", "port 0"),
        (":7102", "has no host"),
        ("::1:7102", "IPv6"),
        ("\"[::1]x:7102\"", "IPv6"),
        ("bad_host!:7102", "neither an IP address nor a DNS name"),
    ] {
        let m = err(&EXAMPLE.replace("127.0.0.1:7102", address));
        has(&m, &["conf/parties.yaml:4:22:", "endpoint `bob`", needle]);
    }
    let d = Deployment::from_yaml(&EXAMPLE.replace("127.0.0.1:7102", "\"[::1]:7102\""), Path::new("p.yaml")).unwrap();
    assert_eq!(d.endpoints["bob"].address, "[::1]:7102");
}

#[test]
fn duplicate_and_invalid_names_are_refused() {
    let twice = EXAMPLE.replace("  bob:   ", "  alice: ");
    assert_eq!(err(&twice), "conf/parties.yaml:4:3: endpoint `alice` is listed twice (first at line 3, column 3)");
    has(
        &err(&EXAMPLE.replace("  bob:   ", "  \"bob smith\": ")),
        &["conf/parties.yaml:4:3:", "`bob smith` is not a valid DNS name"],
    );
    has(&err(&EXAMPLE.replace("  bob:   ", "  10.0.0.1: ")), &["conf/parties.yaml:4:3:", "`10.0.0.1`"]);
}

#[test]
fn an_unknown_endpoint_lists_the_deployments_endpoints() {
    let d = Deployment::from_yaml(EXAMPLE, Path::new("parties.yaml")).unwrap();
    assert_eq!(
        d.tcp_config("carol").unwrap_err().to_string(),
        "`carol` is not in deployment parties.yaml (endpoints: alice, bob, dealer)"
    );
}

#[test]
fn an_address_that_does_not_resolve_names_the_endpoint() {
    let text = EXAMPLE.replace("127.0.0.1:7102", "no-such-host.invalid:7102");
    let d = Deployment::from_yaml(&text, Path::new("parties.yaml")).unwrap();
    has(
        &d.tcp_config("alice").unwrap_err().to_string(),
        &["parties.yaml: endpoint `bob`: address `no-such-host.invalid:7102` does not resolve"],
    );
}

#[test]
fn missing_or_unusable_pem_files_name_the_path_and_endpoint() {
    let tmp = TempDir::new("pem");
    let file = tmp.0.join("parties.yaml");
    std::fs::write(&file, EXAMPLE).unwrap();
    let d = Deployment::load(&file).unwrap();
    let ca = tmp.0.join("certs/ca.pem");
    has(
        &d.tcp_config("alice").unwrap_err().to_string(),
        &[&file.display().to_string(), "cannot read the CA certificate", &ca.display().to_string()],
    );
    write_certs(&tmp.0.join("certs"), &names(&["alice", "bob", "dealer"]), Validity::default()).unwrap();
    assert!(d.tcp_config("alice").is_ok());
    assert!(d.tcp_config("bob").is_ok());

    // Only the endpoint's own key is read: a host holds no other key.
    std::fs::remove_file(tmp.0.join("certs/alice.key")).unwrap();
    assert!(d.tcp_config("bob").is_ok());
    let m = d.tcp_config("alice").unwrap_err().to_string();
    has(&m, &["cannot read the key of `alice`", &tmp.0.join("certs/alice.key").display().to_string()]);

    std::fs::remove_file(tmp.0.join("certs/bob.pem")).unwrap();
    has(&d.tcp_config("bob").unwrap_err().to_string(), &["cannot read the certificate of `bob`", "bob.pem"]);

    // A key file that is not a key: its content never shows.
    let secret = "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU!!\n-----END PRIVATE KEY-----\n";
    std::fs::write(tmp.0.join("certs/dealer.key"), secret).unwrap();
    let e = d.tcp_config("dealer").unwrap_err();
    has(&e.to_string(), &["the key of `dealer`", "dealer.key", "holds no PEM private key"]);
    assert!(!format!("{e} {e:?}").contains("U0VDUkVU"), "{e:?}");
    std::fs::write(tmp.0.join("certs/dealer.pem"), "not a certificate").unwrap();
    has(&d.tcp_config("dealer").unwrap_err().to_string(), &["the certificate of `dealer`", "holds no PEM certificate"]);

    load_missing_file();
}

fn load_missing_file() {
    let m = Deployment::load(Path::new("/nonexistent/parties.yaml")).unwrap_err().to_string();
    has(&m, &["cannot read deployment file /nonexistent/parties.yaml"]);
}

#[test]
fn write_certs_writes_private_keys_and_refuses_to_overwrite() {
    let tmp = TempDir::new("write");
    let dir = tmp.0.join("certs");
    let validity = Validity::days_from_now(30);
    assert_eq!(write_certs(&dir, &names(&["alice", "bob"]), validity).unwrap(), validity);
    for f in ["ca.pem", "alice.pem", "alice.key", "bob.pem", "bob.key"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("alice.key"), 0o600);
        assert_eq!(mode("bob.key"), 0o600);
    }
    let before = std::fs::read(dir.join("alice.key")).unwrap();
    let e = write_certs(&dir, &names(&["carol", "alice"]), validity).unwrap_err();
    has(&e.to_string(), &["ca.pem already exists", "nothing was written"]);
    assert!(!dir.join("carol.pem").exists(), "nothing was written");
    assert_eq!(std::fs::read(dir.join("alice.key")).unwrap(), before);

    has(&write_certs(&dir, &names(&["x y"]), validity).unwrap_err().to_string(), &["`x y` is not a valid DNS name"]);
    has(&write_certs(&dir, &names(&["c", "c"]), validity).unwrap_err().to_string(), &["`c` is named twice"]);
    has(&write_certs(&tmp.0.join("other"), &names(&["ca"]), validity).unwrap_err().to_string(), &["named `ca`"]);
    let backwards = Validity { not_before: validity.not_after, not_after: validity.not_before };
    has(&write_certs(&tmp.0.join("other"), &names(&["c"]), backwards).unwrap_err().to_string(), &["ends"]);
}

#[test]
fn the_loopback_deployment_loads_with_the_dealer_on_the_base_port() {
    let yaml = loopback_deployment_yaml(Path::new("certs"), &names(&["alice", "bob", "dealer"]), 7100);
    let d = Deployment::from_yaml(&yaml, Path::new("parties.yaml")).unwrap();
    let want = Deployment::from_yaml(EXAMPLE, Path::new("parties.yaml")).unwrap();
    assert_eq!(d, want, "{yaml}");
    assert!(
        yaml.contains("  dealer: { address: 127.0.0.1:7100, cert: certs/dealer.pem, key: certs/dealer.key }"),
        "{yaml}"
    );

    // No dealer: the parties still start one above the base; odd paths are quoted.
    let yaml = loopback_deployment_yaml(Path::new("my certs"), &names(&["north", "south"]), 9000);
    let d = Deployment::from_yaml(&yaml, Path::new("p.yaml")).unwrap();
    assert_eq!(d.endpoints["north"].address, "127.0.0.1:9001");
    assert_eq!(d.endpoints["south"].address, "127.0.0.1:9002");
    assert_eq!(d.ca, Path::new("my certs/ca.pem"));
    assert_eq!(d.endpoints["south"].key, Path::new("my certs/south.key"));

    // A port past 65535 is reported when loading, not a panic.
    let yaml = loopback_deployment_yaml(Path::new("c"), &names(&["a", "b"]), 65535);
    has(&Deployment::from_yaml(&yaml, Path::new("p.yaml")).unwrap_err().to_string(), &["port `65536`"]);
}

#[test]
fn the_issues_example_connects_three_processes_over_loopback() {
    let tmp = TempDir::new("connect");
    let all = names(&["alice", "bob", "dealer"]);
    write_certs(&tmp.0.join("certs"), &all, Validity::default()).unwrap();
    let mut text = EXAMPLE.to_string();
    for port in ["7100", "7101", "7102"] {
        text = text.replace(&format!(":{port},"), &format!(":{},", free_port()));
    }
    let file = tmp.0.join("parties.yaml");
    std::fs::write(&file, text).unwrap();
    let d = Deployment::load(&file).unwrap();
    let session = SessionInfo {
        id: "deployment-test".into(),
        parties: names(&["alice", "bob"]),
        owners: vec![],
        has_dealer: true,
        dealer_window: 4,
        timeout: Duration::from_secs(5),
    };
    let who =
        [("alice", Endpoint::Party(PartyId(0))), ("bob", Endpoint::Party(PartyId(1))), ("dealer", Endpoint::Dealer)];
    let configs: Vec<_> = who.iter().map(|(n, e)| (d.tcp_config(n).unwrap(), *e)).collect();
    assert!(!format!("{:?}", configs[0].0).contains("PRIVATE KEY"), "Debug shows no key");
    let links: Vec<Box<dyn Link>> = std::thread::scope(|sc| {
        let hs: Vec<_> = configs
            .into_iter()
            .map(|(mut cfg, e)| {
                cfg.connect_timeout = Duration::from_secs(10);
                let s = &session;
                sc.spawn(move || TcpTransport::new(cfg).and_then(|t| t.connect(s, e)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    let wait = Duration::from_secs(5);
    for (i, (_, from)) in who.iter().enumerate() {
        for (j, (_, to)) in who.iter().enumerate() {
            if i != j {
                links[i].send(*to, format!("{from}->{to}").into_bytes()).unwrap();
            }
        }
    }
    for (i, (_, to)) in who.iter().enumerate() {
        for (j, (_, from)) in who.iter().enumerate() {
            if i != j {
                assert_eq!(links[i].recv(*from, wait).unwrap(), format!("{from}->{to}").into_bytes());
            }
        }
    }
}
