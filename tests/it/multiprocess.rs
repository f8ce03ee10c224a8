//! The real binary as separate processes over loopback: `mpcflow certs new`, then
//! `mpcflow party --as alice`, `mpcflow party --as bob` and `mpcflow dealer`, each with only its
//! own key and inputs. The runs must give the in-process answers, and every injected fault
//! (a killed party, garbage on a connection, a wrong certificate, another pipeline on one side)
//! must end every process with a non-zero exit and a reason, within a bound, showing no output.

use crate::support::root;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every process must have exited within this long after the fault (or the start).
const BOUND: Duration = Duration::from_secs(40);
/// `--timeout` and `--connect-timeout` given to every process.
const TIMEOUT_S: &str = "10";

fn mpcflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mpcflow"));
    c.current_dir(root()).env_remove("RUST_LOG");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for one test.
fn scratch(test: &str) -> crate::support::Scratch {
    crate::support::Scratch::new(&format!("mpcflow-mp-{test}"))
}

/// `n` consecutive loopback ports nobody listens on right now, below Linux's ephemeral range
/// (32768 and up), so that no process's outgoing connection takes one before its listener does.
fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::AtomicU16;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let spread = (std::process::id() % 500) as u16 * 20;
    loop {
        let base = 20_000 + (spread + NEXT.fetch_add(n as u16, Ordering::Relaxed)) % 12_000;
        let held: Vec<TcpListener> =
            (0..n as u16).filter_map(|i| TcpListener::bind(("127.0.0.1", base + i)).ok()).collect();
        if held.len() == n {
            return held.iter().map(|l| l.local_addr().unwrap().port()).collect();
        }
    }
}

/// `mpcflow certs new DIR/NAME --parties ... --deployment DIR/FILE`; returns the deployment path.
fn certs(dir: &Path, certs_name: &str, file: &str, names: &str) -> PathBuf {
    let deployment = dir.join(file);
    let out = mpcflow()
        .args(["certs", "new"])
        .arg(dir.join(certs_name))
        .args(["--parties", names, "--deployment"])
        .arg(&deployment)
        .output()
        .unwrap();
    assert!(out.status.success(), "certs new: {}", text(&out.stderr));
    deployment
}

/// Rewrites every `127.0.0.1:PORT` of a deployment file to the port given for its endpoint.
fn set_ports(deployment: &Path, ports: &[(&str, u16)]) {
    let yaml = std::fs::read_to_string(deployment).unwrap();
    let mut out = String::new();
    for line in yaml.lines() {
        let key = line.trim_start().split(':').next().unwrap_or("");
        let mut line = line.to_string();
        if let Some((_, port)) = ports.iter().find(|(n, _)| *n == key)
            && let Some(at) = line.find("127.0.0.1:")
        {
            let end = line[at + 10..].find(|c: char| !c.is_ascii_digit()).map_or(line.len(), |e| at + 10 + e);
            line.replace_range(at..end, &format!("127.0.0.1:{port}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    std::fs::write(deployment, out).unwrap();
}

/// A deployment of alice, bob and the dealer on free ports.
fn deployment(dir: &Path) -> PathBuf {
    let d = certs(dir, "certs", "parties.yaml", "alice,bob,dealer");
    let p = free_ports(3);
    set_ports(&d, &[("dealer", p[0]), ("alice", p[1]), ("bob", p[2])]);
    d
}

fn party(deployment: &Path, file: &str, name: &str, inputs: &[&str]) -> Command {
    party_waiting(deployment, file, name, inputs, TIMEOUT_S)
}

fn party_waiting(deployment: &Path, file: &str, name: &str, inputs: &[&str], timeout_s: &str) -> Command {
    let mut c = mpcflow();
    c.args(["party", "--as", name, "--deployment"]).arg(deployment);
    c.args([file, "--timeout", timeout_s, "--connect-timeout", TIMEOUT_S]);
    for i in inputs {
        c.args(["--input", i]);
    }
    c
}

fn dealer(deployment: &Path, file: &str) -> Command {
    dealer_waiting(deployment, file, TIMEOUT_S)
}

fn dealer_waiting(deployment: &Path, file: &str, timeout_s: &str) -> Command {
    let mut c = mpcflow();
    c.args(["dealer", "--deployment"]).arg(deployment);
    c.args([file, "--timeout", timeout_s, "--connect-timeout", TIMEOUT_S]);
    c
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// Waits for every child within `bound` (killing all and failing the test if one hangs).
fn wait_all(children: Vec<Child>, bound: Duration) -> Vec<Output> {
    let deadline = Instant::now() + bound;
    let mut children: Vec<Option<Child>> = children.into_iter().map(Some).collect();
    loop {
        let running = children.iter_mut().flatten().map(|c| c.try_wait().unwrap().is_none()).filter(|&r| r).count();
        if running == 0 {
            break;
        }
        if Instant::now() > deadline {
            for c in children.iter_mut().flatten() {
                let _ = c.kill();
            }
            let outs: Vec<String> = children
                .into_iter()
                .flatten()
                .map(|c| c.wait_with_output().unwrap())
                .map(|o| format!("{:?}: {}", o.status, text(&o.stderr)))
                .collect();
            panic!("a process did not exit within {bound:?}:\n{}", outs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children.into_iter().flatten().map(|c| c.wait_with_output().unwrap()).collect()
}

fn assert_ok(o: &Output, who: &str) {
    assert!(o.status.success(), "{who} failed: {}", text(&o.stderr));
}

/// A failed process: non-zero exit, an `error:` line containing every needle, no output shown.
fn assert_failed(o: &Output, who: &str, needles: &[&str]) {
    let err = text(&o.stderr);
    eprintln!("{who} exited with {:?}: {}", o.status.code(), err.trim_end());
    assert!(!o.status.success(), "{who} should fail; stdout {} stderr {err}", text(&o.stdout));
    assert!(err.contains("error: "), "{who} says why: {err}");
    for n in needles {
        assert!(err.contains(n), "{who} should mention `{n}`: {err}");
    }
    assert!(!text(&o.stdout).contains(" = "), "{who} showed an output: {}", text(&o.stdout));
}

#[test]
fn millionaires_on_the_printed_deployment() {
    // The deployment file exactly as `certs new` writes it: by default on ports 7100..7102,
    // here from a free base port so that concurrent runs do not collide.
    let dir = scratch("default");
    let d = certs(&dir, "certs", "parties.yaml", "alice,bob,dealer");
    let yaml = std::fs::read_to_string(&d).unwrap();
    assert!(yaml.contains("127.0.0.1:7101") && yaml.contains("certs/alice.key"), "{yaml}");
    let base = free_ports(3)[0].to_string();
    let d = dir.join("ours.yaml");
    let out = mpcflow()
        .args(["certs", "new"])
        .arg(dir.join("ours"))
        .args(["--parties", "alice,bob,dealer", "--base-port", &base, "--deployment"])
        .arg(&d)
        .output()
        .unwrap();
    assert_ok(&out, "certs new --base-port");
    let file = "graphs/millionaires.yaml";
    let outs = wait_all(
        vec![
            spawn(party(&d, file, "alice", &["alice_wealth=5000000"])),
            spawn(party(&d, file, "bob", &["bob_wealth=3000000"])),
            spawn(dealer(&d, file)),
        ],
        BOUND,
    );
    for (o, who) in outs.iter().zip(["alice", "bob", "dealer"]) {
        assert_ok(o, who);
    }
    assert_eq!(text(&outs[0].stdout), "alice_richer = 1 (true)    (revealed to alice, bob)\n");
    assert_eq!(text(&outs[1].stdout), "alice_richer = 1 (true)    (revealed to alice, bob)\n");
    assert!(text(&outs[2].stderr).contains("dealer: millionaires done"), "{}", text(&outs[2].stderr));
    assert_eq!(text(&outs[2].stdout), "", "the dealer learns no output");
}

#[test]
fn hospital_stats_in_three_processes_equals_the_in_process_run() {
    let dir = scratch("hospital");
    let d = certs(&dir, "certs", "parties.yaml", "north,south,dealer");
    let p = free_ports(3);
    set_ports(&d, &[("dealer", p[0]), ("north", p[1]), ("south", p[2])]);
    let file = "graphs/hospital_stats.yaml";
    let north = "north_bp=@graphs/data/north.csv:systolic_bp";
    let south = "south_bp=@graphs/data/south.csv:systolic_bp";
    let mut pn = party(&d, file, "north", &[north]);
    pn.arg("--json");
    let mut ps = party(&d, file, "south", &[south]);
    ps.arg("--json");
    let outs = wait_all(vec![spawn(pn), spawn(ps), spawn(dealer(&d, file))], BOUND);
    for (o, who) in outs.iter().zip(["north", "south", "dealer"]) {
        assert_ok(o, who);
    }
    let local = mpcflow().args(["run", file, "--json", "--input", north, "--input", south]).output().unwrap();
    assert_ok(&local, "run");
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();
    for o in &outs[..2] {
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // Truncation in fss2pc is exact, so the answers do not depend on the randomness.
        assert_eq!(doc["outputs"], local["outputs"]);
        assert_eq!(doc["fingerprint"], local["fingerprint"], "the same plan as in one process");
    }
}

/// The digits model with every weight (float initializer of more than one element) set to 0.
fn zeroed_digits_model() -> Vec<u8> {
    use mpcflow_importer_onnx::proto::onnx::ModelProto;
    use prost::Message;
    let bytes = std::fs::read(root().join("tests/fixtures/onnx/digits_cnn.onnx")).unwrap();
    let mut m = ModelProto::decode(&bytes[..]).unwrap();
    let mut zeroed = 0;
    for t in &mut m.graph.as_mut().unwrap().initializer {
        if t.data_type == Some(1) && t.dims.iter().product::<i64>() > 1 {
            t.raw_data.iter_mut().for_each(|raw| raw.fill(0));
            t.float_data.iter_mut().for_each(|v| *v = 0.0);
            zeroed += 1;
        }
    }
    assert_eq!(zeroed, 6, "the digits model has six weight tensors");
    m.encode_to_vec()
}

#[test]
fn a_model_pipeline_in_three_processes_takes_the_weights_from_the_owner_only() {
    let dir = scratch("model");
    let d = certs(&dir, "certs", "parties.yaml", "patient,clinic,dealer");
    let p = free_ports(3);
    set_ports(&d, &[("dealer", p[0]), ("patient", p[1]), ("clinic", p[2])]);
    // The clinic runs the pipeline as it is; the patient and the dealer get the model's structure
    // only: a copy of the file whose weights are all zero, named by a copy of the pipeline.
    let file = "graphs/digits_model.yaml";
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("digits_cnn.onnx"), zeroed_digits_model()).unwrap();
    let yaml = std::fs::read_to_string(root().join(file)).unwrap();
    let copy = yaml.replace("path: ../tests/fixtures/onnx/digits_cnn.onnx", "path: digits_cnn.onnx");
    assert_ne!(copy, yaml);
    std::fs::write(shared.join("digits_model.yaml"), copy).unwrap();
    let copy = shared.join("digits_model.yaml");
    let copy = copy.to_str().unwrap();

    let image = "image=@tests/fixtures/onnx/digits_sample_image.npy";
    let mut patient = party(&d, copy, "patient", &[image]);
    patient.arg("--json");
    let clinic = party(&d, file, "clinic", &[]);
    let outs = wait_all(vec![spawn(patient), spawn(clinic), spawn(dealer(&d, copy))], BOUND);
    for (o, who) in outs.iter().zip(["patient", "clinic", "dealer"]) {
        assert_ok(o, who);
    }
    let local = mpcflow().args(["run", file, "--json", "--input", image]).output().unwrap();
    assert_ok(&local, "run");
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&outs[0].stdout).unwrap();
    assert_eq!(doc["outputs"]["class"], serde_json::json!([4]));
    // The clinic's weights, not the patient's zeros: the answer of the run with the real file.
    assert_eq!(doc["outputs"], local["outputs"]);
    assert_eq!(doc["fingerprint"], local["fingerprint"], "the plan depends on the structure only");
}

/// A pipeline that runs for a while: a chain of secure ops on a few thousand elements.
fn long_pipeline(dir: &Path) -> String {
    long_pipeline_under(dir, "[alice, bob]", "fss2pc")
}

/// 60 ReLUs in a chain under `protocol` between `parties` (alice and bob own the inputs).
fn long_pipeline_under(dir: &Path, parties: &str, protocol: &str) -> String {
    let mut y = format!(
        "version: 1\nname: long\nparties: {parties}\nprotocol: {protocol}\ninputs:\n  \
         x: {{ owner: alice, dtype: fixed, shape: [4096] }}\n  y: {{ owner: bob, dtype: fixed, shape: [4096] }}\n\
         nodes:\n  s0: {{ op: add, inputs: [x, y] }}\n",
    );
    for i in 1..=60 {
        y.push_str(&format!("  s{i}: {{ op: relu, inputs: [s{}] }}\n", i - 1));
    }
    y.push_str("outputs:\n  s60: { reveal_to: [alice] }\n");
    let path = dir.join("long.yaml");
    std::fs::write(&path, y).unwrap();
    path.to_string_lossy().into_owned()
}

fn long_inputs(dir: &Path) -> (String, String) {
    let v: Vec<String> = (0..4096).map(|i| format!("{}", (i % 97) as f64 - 40.0)).collect();
    let json = format!("[{}]", v.join(","));
    std::fs::write(dir.join("v.json"), &json).unwrap();
    let at = format!("@{}", dir.join("v.json").display());
    (format!("x={at}"), format!("y={at}"))
}

/// Reads a child's stderr in the background, keeping the text and flagging a marker line.
fn watch_stderr(child: &mut Child, marker: &'static str, needed: usize) -> (Arc<Mutex<String>>, Arc<AtomicBool>) {
    let err = child.stderr.take().unwrap();
    let (log, seen) = (Arc::new(Mutex::new(String::new())), Arc::new(AtomicBool::new(false)));
    let (l, s) = (log.clone(), seen.clone());
    std::thread::spawn(move || {
        let mut count = 0;
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains(marker) {
                count += 1;
                if count >= needed {
                    s.store(true, Ordering::Release);
                }
            }
            l.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    (log, seen)
}

/// Waits until `child` (logging at debug level) has finished `nodes` nodes; returns its stderr
/// as read so far and from then on.
fn wait_for_progress(child: &mut Child, nodes: usize) -> Arc<Mutex<String>> {
    let (log, seen) = watch_stderr(child, "node done", nodes);
    let start = Instant::now();
    while !seen.load(Ordering::Acquire) {
        let gone = child.try_wait().unwrap();
        assert!(gone.is_none() && start.elapsed() < BOUND, "it never got going: {}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }
    log
}

/// Starts the long pipeline on alice, bob and the dealer, every wait bounded by `timeout_s`,
/// and returns once bob (logging at debug level) has finished a few nodes: mid-run. Bob's
/// stderr is read by a watcher, whose text comes last.
fn start_long_run(test: &str, timeout_s: &str) -> (Child, Child, Child, Arc<Mutex<String>>) {
    let dir = scratch(test);
    let d = deployment(&dir);
    let file = long_pipeline(&dir);
    let (x, y) = long_inputs(&dir);
    let alice = spawn(party_waiting(&d, &file, "alice", &[&x], timeout_s));
    let mut bob_cmd = party_waiting(&d, &file, "bob", &[&y], timeout_s);
    bob_cmd.env("RUST_LOG", "debug");
    let mut bob = spawn(bob_cmd);
    let dealer = spawn(dealer_waiting(&d, &file, timeout_s));
    let bob_log = wait_for_progress(&mut bob, 5);
    (alice, bob, dealer, bob_log)
}

#[test]
fn a_party_killed_mid_run_stops_every_process() {
    let (alice, mut bob, dealer, _) = start_long_run("kill", TIMEOUT_S);
    bob.kill().unwrap();
    let _ = bob.wait();
    let outs = wait_all(vec![alice, dealer], BOUND);
    assert_failed(&outs[0], "alice", &["bob"]);
    assert_failed(&outs[1], "dealer", &["bob"]);
}

#[test]
fn a_stalled_party_stops_every_process_at_the_timeout() {
    let (alice, mut bob, dealer, _) = start_long_run("stall", "3");
    // Freeze bob: its connections stay open but nothing comes from it.
    let stopped = Command::new("kill").args(["-STOP", &bob.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let frozen = Instant::now();
    let outs = wait_all(vec![alice, dealer], BOUND);
    let took = frozen.elapsed();
    eprintln!("alice and the dealer ended {took:?} after bob froze (timeout 3 s)");
    assert!(took >= Duration::from_millis(2500), "alice stopped before bob's silence reached the timeout");
    // Within the timeout plus a small bound: the dealer hears alice's abort while it is blocked
    // writing to bob (it used to end two timeouts later, 9.3 s after the freeze).
    assert!(took < Duration::from_secs(6), "took {took:?} with a timeout of 3 s");
    let _ = bob.kill();
    let _ = bob.wait();
    // Alice times out herself, or hears first that the dealer timed out sending to bob; either
    // way bob is the one named, not the dealer's material held up behind him.
    assert_failed(&outs[0], "alice", &["bob", "3.0 s"]);
    assert!(!text(&outs[0].stderr).contains("material"), "alice blames bob: {}", text(&outs[0].stderr));
    assert_failed(&outs[1], "dealer", &["bob"]);
}

/// Forwards every connection on `listen` to `target`, inserting garbage into the first stream
/// towards `target` that passes `after` bytes.
fn garbling_proxy(listen: TcpListener, target: u16, after: usize) {
    let garbled = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for from in listen.incoming() {
            let Ok(mut from) = from else { return };
            let garbled = garbled.clone();
            std::thread::spawn(move || {
                // The target may not listen yet: the dialer's own retries reach us first.
                let start = Instant::now();
                let mut to = loop {
                    match TcpStream::connect(("127.0.0.1", target)) {
                        Ok(s) => break s,
                        Err(_) if start.elapsed() < BOUND => std::thread::sleep(Duration::from_millis(10)),
                        Err(_) => return,
                    }
                };
                let (mut from2, mut to2) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut to2, &mut from2);
                });
                let mut passed = 0usize;
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed += n;
                    if passed >= after && !garbled.swap(true, Ordering::AcqRel) {
                        // A TLS application-data record header and a body that fails to decrypt.
                        let _ = to.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]);
                        let _ = to.write_all(&[0xA5; 32]);
                    }
                }
            });
        }
    });
}

/// A deployment of alice, bob and carol (rep3's three computing parties, no dealer) on free ports.
fn rep3_deployment(dir: &Path) -> PathBuf {
    let d = certs(dir, "certs", "parties.yaml", "alice,bob,carol");
    let p = free_ports(3);
    set_ports(&d, &[("alice", p[0]), ("bob", p[1]), ("carol", p[2])]);
    d
}

#[test]
fn three_hospitals_under_rep3_in_three_processes_equal_the_in_process_run() {
    let dir = scratch("rep3-hospitals");
    let d = certs(&dir, "certs", "parties.yaml", "north,south,east");
    let p = free_ports(3);
    set_ports(&d, &[("north", p[0]), ("south", p[1]), ("east", p[2])]);
    let file = "graphs/three_hospitals.yaml";
    let input = |h: &str| format!("{h}_bp=@graphs/data/{h}.csv:systolic_bp");
    let hospitals = ["north", "south", "east"];
    let children = hospitals
        .iter()
        .map(|h| {
            let mut c = party(&d, file, h, &[&input(h)]);
            c.arg("--json");
            spawn(c)
        })
        .collect();
    let outs = wait_all(children, BOUND);
    for (o, who) in outs.iter().zip(hospitals) {
        assert_ok(o, who);
    }
    let mut local = mpcflow();
    local.args(["run", file, "--json"]);
    for h in hospitals {
        local.args(["--input", &input(h)]);
    }
    let local = local.output().unwrap();
    assert_ok(&local, "run");
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();
    assert_eq!(local["outputs"]["n_patients"], serde_json::json!(611), "{local}");
    for o in &outs {
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // rep3's truncations are fss2pc's exact ones: the answers do not depend on randomness.
        assert_eq!(doc["outputs"], local["outputs"]);
        assert_eq!(doc["fingerprint"], local["fingerprint"], "the same plan as in one process");
    }
}

/// The long chain under rep3 on alice, bob and carol, every wait bounded by `timeout_s`;
/// returns once bob (logging at debug level) has finished a few nodes.
fn start_long_rep3_run(test: &str, timeout_s: &str) -> (Child, Child, Child) {
    let dir = scratch(test);
    let d = rep3_deployment(&dir);
    let file = long_pipeline_under(&dir, "[alice, bob, carol]", "rep3");
    let (x, y) = long_inputs(&dir);
    let alice = spawn(party_waiting(&d, &file, "alice", &[&x], timeout_s));
    let mut bob_cmd = party_waiting(&d, &file, "bob", &[&y], timeout_s);
    bob_cmd.env("RUST_LOG", "debug");
    let mut bob = spawn(bob_cmd);
    let carol = spawn(party_waiting(&d, &file, "carol", &[], timeout_s));
    wait_for_progress(&mut bob, 5);
    (alice, bob, carol)
}

#[test]
fn a_rep3_party_killed_mid_run_stops_the_other_two() {
    let (alice, mut bob, carol) = start_long_rep3_run("rep3-kill", TIMEOUT_S);
    bob.kill().unwrap();
    let _ = bob.wait();
    let outs = wait_all(vec![alice, carol], BOUND);
    assert_failed(&outs[0], "alice", &["bob"]);
    assert_failed(&outs[1], "carol", &["bob"]);
}

#[test]
fn a_stalled_rep3_party_stops_the_other_two_at_the_timeout() {
    let (alice, mut bob, carol) = start_long_rep3_run("rep3-stall", "3");
    let stopped = Command::new("kill").args(["-STOP", &bob.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let frozen = Instant::now();
    let outs = wait_all(vec![alice, carol], BOUND);
    let took = frozen.elapsed();
    eprintln!("alice and carol ended {took:?} after bob froze (timeout 3 s)");
    assert!(took >= Duration::from_millis(2500), "they stopped before bob's silence reached the timeout");
    assert!(took < Duration::from_secs(6), "took {took:?} with a timeout of 3 s");
    let _ = bob.kill();
    let _ = bob.wait();
    assert_failed(&outs[0], "alice", &["bob", "3.0 s"]);
    assert_failed(&outs[1], "carol", &["bob", "3.0 s"]);
}

#[test]
fn garbage_on_a_connection_stops_every_process() {
    let dir = scratch("garbage");
    let d = deployment(&dir);
    // alice dials bob through a proxy that garbles the stream after the setup.
    let via_proxy = dir.join("alice.yaml");
    std::fs::copy(&d, &via_proxy).unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    set_ports(&via_proxy, &[("bob", proxy_port)]);
    let yaml = std::fs::read_to_string(&d).unwrap();
    let bob_port: u16 = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("bob:"))
        .and_then(|l| l.split("127.0.0.1:").nth(1))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    garbling_proxy(proxy, bob_port, 64 * 1024);
    let file = long_pipeline(&dir);
    let (x, y) = long_inputs(&dir);
    let outs = wait_all(
        vec![
            spawn(party(&via_proxy, &file, "alice", &[&x])),
            spawn(party(&d, &file, "bob", &[&y])),
            spawn(dealer(&d, &file)),
        ],
        BOUND,
    );
    assert_failed(&outs[1], "bob", &["alice", "TLS error"]);
    assert_failed(&outs[0], "alice", &["bob"]);
    assert_failed(&outs[2], "dealer", &["alice"]);
}

#[test]
fn a_certificate_from_another_deployment_is_refused_everywhere() {
    let dir = scratch("wrongcert");
    let d = deployment(&dir);
    // bob presents a certificate for `bob` issued by another deployment's CA.
    certs(&dir, "other", "other.yaml", "alice,bob,dealer");
    let bob_yaml = dir.join("bob.yaml");
    let yaml = std::fs::read_to_string(&d).unwrap();
    std::fs::write(&bob_yaml, yaml.replace("certs/bob.pem", "other/bob.pem").replace("certs/bob.key", "other/bob.key"))
        .unwrap();
    let file = "graphs/millionaires.yaml";
    let outs = wait_all(
        vec![
            spawn(party(&d, file, "alice", &["alice_wealth=1"])),
            spawn(party(&bob_yaml, file, "bob", &["bob_wealth=2"])),
            spawn(dealer(&d, file)),
        ],
        BOUND,
    );
    // bob and the dealer see the certificate; alice only sees that bob, gone after the
    // refusal, never answers.
    assert_failed(&outs[0], "alice", &["bob"]);
    assert_failed(&outs[1], "bob", &["certificate"]);
    assert_failed(&outs[2], "dealer", &["certificate", "bob"]);
}

/// Millionaires with bob's copy of the pipeline edited by `edit`: alice, bob and the dealer.
fn millionaires_with_bobs_copy(test: &str, edit: impl Fn(&str) -> String) -> Vec<Output> {
    let dir = scratch(test);
    let d = deployment(&dir);
    let mine = "graphs/millionaires.yaml";
    let theirs = dir.join("edited.yaml");
    std::fs::write(&theirs, edit(&std::fs::read_to_string(root().join(mine)).unwrap())).unwrap();
    let theirs = theirs.to_string_lossy().into_owned();
    wait_all(
        vec![
            spawn(party(&d, mine, "alice", &["alice_wealth=1"])),
            spawn(party(&d, &theirs, "bob", &["bob_wealth=2"])),
            spawn(dealer(&d, mine)),
        ],
        BOUND,
    )
}

#[test]
fn a_different_pipeline_on_one_side_is_refused_everywhere() {
    let outs = millionaires_with_bobs_copy("otherpipe", |y| y.replace("op: gt", "op: ge"));
    assert_failed(&outs[0], "alice", &["bob runs a different pipeline: node `alice_richer`"]);
    assert_failed(&outs[1], "bob", &["different pipeline"]);
    assert_failed(&outs[2], "dealer", &["bob runs a different pipeline"]);
}

#[test]
fn parties_listed_in_another_order_are_refused_everywhere() {
    let start = Instant::now();
    let outs = millionaires_with_bobs_copy("order", |y| y.replace("parties: [alice, bob]", "parties: [bob, alice]"));
    assert_failed(&outs[0], "alice", &["bob runs a different pipeline: parties: `bob, alice` in bob's file"]);
    assert_failed(&outs[1], "bob", &["different pipeline: parties"]);
    assert_failed(&outs[2], "dealer", &["bob runs a different pipeline: parties"]);
    assert!(start.elapsed() < Duration::from_secs(8), "refused at the handshake, not at a connect timeout");
}

#[test]
fn the_dealer_killed_mid_run_stops_both_parties() {
    let (alice, bob, mut dealer, bob_log) = start_long_run("dealerkill", TIMEOUT_S);
    dealer.kill().unwrap();
    let _ = dealer.wait();
    let mut outs = wait_all(vec![alice, bob], BOUND);
    assert_failed(&outs[0], "alice", &["dealer"]);
    // Bob's stderr went to the watcher: put its error lines back for the check.
    std::thread::sleep(Duration::from_millis(100));
    let errors: String = bob_log.lock().unwrap().lines().filter(|l| l.starts_with("error: ")).collect();
    outs[1].stderr = errors.into_bytes();
    assert_failed(&outs[1], "bob", &["dealer"]);
}

#[test]
fn bad_deployment_and_identity_errors_name_the_file_and_the_endpoint() {
    let dir = scratch("baddeploy");
    let d = deployment(&dir);
    let out = party(&d, "graphs/millionaires.yaml", "carol", &[]).output().unwrap();
    assert_failed(&out, "carol", &["carol", "parties.yaml"]);
    let out = party(&d, "graphs/millionaires.yaml", "alice", &["bob_wealth=3"]).output().unwrap();
    assert_failed(&out, "alice", &["input `bob_wealth` belongs to bob"]);
    let out = dealer(&d, "graphs/millionaires.yaml").arg("--protocol").arg("ref").output().unwrap();
    assert_failed(&out, "dealer", &["uses no dealer"]);
    let out = party(&d, "graphs/millionaires.yaml", "alice", &["alice_wealth=1"])
        .args(["--protocol", "ref"])
        .output()
        .unwrap();
    assert_failed(&out, "alice", &["protocol `ref` is insecure", "--insecure"]);
    let hospitals = "graphs/hospital_stats.yaml";
    let out = party(&d, hospitals, "north", &["north_bp=[1]"]).output().unwrap();
    assert_failed(&out, "north", &["`north` is not in deployment"]);
    let both = certs(&dir, "more", "more.yaml", "north,dealer");
    let out = party(&both, hospitals, "north", &["north_bp=[1]"]).output().unwrap();
    assert_failed(&out, "north", &["more.yaml: no endpoint for south"]);
}

#[test]
fn an_insecure_protocol_runs_between_processes_only_when_allowed() {
    // `ref` has no dealer: two processes only.
    let dir = scratch("insecure");
    let d = deployment(&dir);
    let file = "graphs/millionaires.yaml";
    let run = |name, input| {
        let mut c = party(&d, file, name, &[input]);
        c.args(["--protocol", "ref", "--insecure"]);
        spawn(c)
    };
    let outs = wait_all(vec![run("alice", "alice_wealth=1"), run("bob", "bob_wealth=2")], BOUND);
    for (o, who) in outs.iter().zip(["alice", "bob"]) {
        assert_ok(o, who);
        assert_eq!(text(&o.stdout), "alice_richer = 0 (false)    (revealed to alice, bob)\n");
    }
}

#[test]
fn a_transform_plugin_that_traps_at_one_party_stops_every_process() {
    let dir = scratch("transform-trap");
    let d = deployment(&dir);
    let wat =
        crate::plugins::wat_plugin("spin", "transform", "unreachable", Some("panicked at src/lib.rs:3:5: bad row"));
    std::fs::write(dir.join("spin.wat"), wat).unwrap();
    let file = dir.join("pipeline.yaml");
    std::fs::write(
        &file,
        "version: 1\nparties: [alice, bob]\nprotocol: fss2pc\nplugins:\n  - { wasm: spin.wat }\ninputs:\n  \
         a: { owner: alice, dtype: fixed, shape: [3], transform: { op: spin } }\n  b: { owner: bob, dtype: fixed, shape: [3] }\n\
         nodes:\n  c: { op: gt, inputs: [a, b] }\noutputs:\n  c: { reveal_to: [alice, bob] }\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let start = Instant::now();
    let children = vec![
        spawn(party(&d, f, "alice", &["a=[1, 2, 3]"])),
        spawn(party(&d, f, "bob", &["b=[3, 2, 1]"])),
        spawn(dealer(&d, f)),
    ];
    let outs = wait_all(children, BOUND);
    // Every process stops at once, well before the 10 s timeout, and says why.
    assert!(start.elapsed() < Duration::from_secs(9), "took {:?}", start.elapsed());
    assert_failed(&outs[0], "alice", &["input `a`: transform", "panicked at src/lib.rs:3:5: bad row"]);
    // The peers hear which input failed, never the plugin's own words (they could hold a value).
    for (o, who) in [(&outs[1], "bob"), (&outs[2], "dealer")] {
        assert_failed(o, who, &["stopped because alice failed", "input `a`: transform"]);
        let err = text(&o.stderr);
        let local = dir.to_str().unwrap();
        assert!(!err.contains("bad row") && !err.contains("spin.wat") && !err.contains(local), "{who}: {err}");
    }
}

#[test]
fn a_rejected_input_reaches_the_peers_without_its_value_or_alices_path() {
    let dir = scratch("input-leak");
    let d = deployment(&dir);
    let file = dir.join("pipeline.yaml");
    std::fs::write(
        &file,
        "version: 1\nparties: [alice, bob]\nprotocol: fss2pc\ninputs:\n  \
         a: { owner: alice, dtype: bit, shape: [3] }\n  b: { owner: bob, dtype: bit, shape: [3] }\n\
         nodes:\n  c: { op: xor, inputs: [a, b] }\noutputs:\n  c: { reveal_to: [alice, bob] }\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let outs = wait_all(
        vec![
            spawn(party(&d, f, "alice", &["a=[1, 0, 987654]"])),
            spawn(party(&d, f, "bob", &["b=[1, 1, 0]"])),
            spawn(dealer(&d, f)),
        ],
        BOUND,
    );
    assert_failed(&outs[0], "alice", &["pipeline.yaml:5:3", "input `a`", "value 987654 is not a bit"]);
    for (o, who) in [(&outs[1], "bob"), (&outs[2], "dealer")] {
        assert_failed(o, who, &["stopped because alice failed", "input `a`"]);
        let err = text(&o.stderr);
        let local = dir.to_str().unwrap();
        assert!(!err.contains("987654") && !err.contains("pipeline.yaml") && !err.contains(local), "{who}: {err}");
    }
}

fn owner(deployment: &Path, file: &str, name: &str, inputs: &[&str]) -> Command {
    let mut c = mpcflow();
    c.args(["owner", "--as", name, "--deployment"]).arg(deployment);
    c.args([file, "--timeout", TIMEOUT_S, "--connect-timeout", TIMEOUT_S, "--json"]);
    for i in inputs {
        c.args(["--input", i]);
    }
    c
}

const HOSPITALS: [&str; 5] = ["north", "south", "east", "west", "central"];

/// Each hospital's `--input` from its file.
fn hospital_input(h: &str) -> String {
    format!("{h}_bp=@graphs/data/{h}.csv:systolic_bp")
}

/// `deployment` cut down to `owner` and the `servers`: all a data owner needs to know.
fn owner_deployment(deployment: &Path, owner: &str, servers: &[&str]) -> PathBuf {
    let yaml = std::fs::read_to_string(deployment).unwrap();
    let keep = |line: &&str| {
        let key = line.trim_start().split(':').next().unwrap_or("");
        !line.starts_with("  ") || key == owner || servers.contains(&key)
    };
    let cut: Vec<&str> = yaml.lines().filter(keep).collect();
    let path = deployment.with_file_name(format!("{owner}.yaml"));
    std::fs::write(&path, cut.join("\n") + "\n").unwrap();
    path
}

/// `file` with `servers` (and a dealer when `dealer`) and the five hospitals as data owners,
/// each in its own process (each with a deployment file of its own and the servers' endpoints
/// only when `cut`); `input` gives each hospital's `--input`. Returns the servers', the owners'
/// and the dealer's exits.
fn hospitals_as_owners(
    test: &str,
    file: &str,
    (servers, dealer, cut): (&[&str], bool, bool),
    input: impl Fn(&str) -> String,
) -> (Vec<Output>, Vec<Output>, Option<Output>) {
    let dir = scratch(test);
    let mut names: Vec<&str> = servers.iter().copied().chain(HOSPITALS).collect();
    if dealer {
        names.push("dealer");
    }
    let d = certs(&dir, "certs", "parties.yaml", &names.join(","));
    let p = free_ports(names.len());
    set_ports(&d, &names.iter().copied().zip(p).collect::<Vec<_>>());
    let mut children: Vec<Child> = servers.iter().map(|s| spawn(party(&d, file, s, &[]))).collect();
    children.extend(HOSPITALS.iter().map(|h| {
        let own = if cut { owner_deployment(&d, h, servers) } else { d.clone() };
        spawn(owner(&own, file, h, &[&input(h)]))
    }));
    if dealer {
        children.push(spawn(self::dealer(&d, file)));
    }
    let mut outs = wait_all(children, BOUND);
    let dealer_out = if dealer { outs.pop() } else { None };
    let owners = outs.split_off(servers.len());
    (outs, owners, dealer_out)
}

/// `file` run in one process with every hospital's records.
fn hospitals_in_one_process(file: &str) -> serde_json::Value {
    let mut local = mpcflow();
    local.args(["run", file, "--json"]);
    for h in HOSPITALS {
        local.args(["--input", &hospital_input(h)]);
    }
    let local = local.output().unwrap();
    assert_ok(&local, "run");
    serde_json::from_slice(&local.stdout).unwrap()
}

#[test]
fn five_hospitals_as_data_owners_of_three_rep3_servers_get_the_in_process_answers() {
    let file = "graphs/five_hospitals.yaml";
    let (servers, owners, _) =
        hospitals_as_owners("owners-rep3", file, (&["server1", "server2", "server3"], false, false), hospital_input);
    let local = hospitals_in_one_process(file);
    assert_eq!(local["outputs"]["n_patients"], serde_json::json!(974), "{local}");
    for (o, h) in owners.iter().zip(HOSPITALS) {
        assert_ok(o, h);
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        // rep3's truncations are exact: the answers do not depend on the randomness.
        assert_eq!(doc["outputs"], local["outputs"], "{h}");
    }
    for (o, s) in servers.iter().zip(["server1", "server2", "server3"]) {
        assert_ok(o, s);
        assert!(!text(&o.stdout).contains(" = "), "{s} shows no output: {}", text(&o.stdout));
    }
}

#[test]
fn five_hospitals_as_data_owners_of_two_fss2pc_servers_and_a_dealer_get_the_in_process_answers() {
    // Each owner's deployment file names only itself and the servers.
    let file = "graphs/five_hospitals_2pc.yaml";
    let (servers, owners, dealer) =
        hospitals_as_owners("owners-fss2pc", file, (&["server1", "server2"], true, true), hospital_input);
    let local = hospitals_in_one_process(file);
    for (o, h) in owners.iter().zip(HOSPITALS) {
        assert_ok(o, h);
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["outputs"], local["outputs"], "{h}");
    }
    for (o, s) in servers.iter().zip(["server1", "server2"]) {
        assert_ok(o, s);
    }
    assert_ok(dealer.as_ref().unwrap(), "dealer");
}

#[test]
fn an_owner_whose_records_break_the_declared_range_stops_every_process_naming_it() {
    let file = "graphs/five_hospitals.yaml";
    let input = |h: &str| if h == "east" { "east_bp=[120.5, 345.25]".to_string() } else { hospital_input(h) };
    let (servers, owners, _) =
        hospitals_as_owners("owners-range", file, (&["server1", "server2", "server3"], false, false), input);
    for (o, s) in servers.iter().zip(["server1", "server2", "server3"]) {
        assert_failed(o, s, &["east"]);
        assert!(!text(&o.stderr).contains("345.25"), "{s} never sees east's value: {}", text(&o.stderr));
    }
    for (o, h) in owners.iter().zip(HOSPITALS) {
        if h == "east" {
            assert_failed(o, h, &["east_bp", "345.25", "outside the declared range [0, 300]"]);
        } else {
            assert_failed(o, h, &["east"]);
            assert!(!text(&o.stderr).contains("345.25"), "{h} never sees east's value: {}", text(&o.stderr));
        }
    }
}

#[test]
fn a_server_killed_mid_run_stops_the_other_servers_and_every_owner() {
    let dir = scratch("owners-kill");
    let servers = ["server1", "server2", "server3"];
    let names: Vec<&str> = servers.iter().copied().chain(HOSPITALS).collect();
    let d = certs(&dir, "certs", "parties.yaml", &names.join(","));
    set_ports(&d, &names.iter().copied().zip(free_ports(names.len())).collect::<Vec<_>>());
    let file = "graphs/five_hospitals.yaml";
    // Enough records that the run is still going when server2 dies.
    for (i, h) in HOSPITALS.iter().enumerate() {
        let values: Vec<String> = (0..200_000).map(|k| format!("{}", 80 + (k * 7 + i * 13) % 120)).collect();
        std::fs::write(dir.join(format!("{h}.json")), format!("[{}]", values.join(","))).unwrap();
    }
    let mut children: Vec<Child> = vec![spawn(party(&d, file, "server1", &[])), spawn(party(&d, file, "server3", &[]))];
    let mut victim = party(&d, file, "server2", &[]);
    victim.env("RUST_LOG", "debug");
    let mut victim = spawn(victim);
    let inputs: Vec<String> =
        HOSPITALS.iter().map(|h| format!("{h}_bp=@{}", dir.join(format!("{h}.json")).display())).collect();
    children.extend(HOSPITALS.iter().zip(&inputs).map(|(h, i)| spawn(owner(&d, file, h, &[i]))));
    wait_for_progress(&mut victim, 12);
    let _ = (victim.kill(), victim.wait());
    let outs = wait_all(children, BOUND);
    assert_failed(&outs[0], "server1", &["server2"]);
    assert_failed(&outs[1], "server3", &["server2"]);
    for (o, h) in outs[2..].iter().zip(HOSPITALS) {
        assert_failed(o, h, &["server"]);
    }
}
