//! Privacy sanity checks of fss2pc and rep3: what bob receives online is masked.
//!
//! A recording transport keeps every payload bob receives from the other parties (alice; under
//! rep3 also carol, the third computing party). Alice's input words never appear in them, and
//! the bytes bob receives when alice's input is all zeros and when it is a fixed non-zero vector
//! are indistinguishable by a chi-square test of homogeneity over many runs. Both hold too when
//! the input comes from a data owner (olga) who computes nothing and receives the outputs, and
//! with local evaluation (alice computes on her own input in the clear and shares the results).

use crate::support::rt;
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{DType, Endpoint, FixedPoint, Op, PartyId};
use mpcflow_transport_mem::MemTransport;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `mem`, but every message payload bob receives from alice is recorded.
struct Recording {
    inner: MemTransport,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct RecordingLink {
    inner: Box<dyn Link>,
    me: Endpoint,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Link for RecordingLink {
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> mpcflow_sdk::Result<()> {
        self.inner.send(to, frame)
    }
    fn recv(&self, from: Endpoint, timeout: Duration) -> mpcflow_sdk::Result<Vec<u8>> {
        let frame = self.inner.recv(from, timeout)?;
        // Protocol messages (frame kind 1) from another party to bob, without the runtime's
        // 7-byte tag.
        let tag = frame.len() - 7;
        if self.me == Endpoint::Party(PartyId(1)) && matches!(from, Endpoint::Party(_)) && frame[tag] == 1 {
            self.seen.lock().unwrap().push(frame[..tag].to_vec());
        }
        Ok(frame)
    }
}

impl Transport for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    fn connect(&self, session: &SessionInfo, me: Endpoint) -> mpcflow_sdk::Result<Box<dyn Link>> {
        Ok(Box::new(RecordingLink { inner: self.inner.connect(session, me)?, me, seen: self.seen.clone() }))
    }
}

const N: usize = 16;

/// Who brings `x` and learns the outputs: alice, or data owner olga.
#[derive(Clone, Copy, Debug)]
enum Source {
    Alice,
    Olga,
}

/// The graph under `protocol` (rep3 with carol as its third party).
fn graph(protocol: &str, source: Source) -> GraphSpec {
    let parties: &[&str] = if protocol == "rep3" { &["alice", "bob", "carol"] } else { &["alice", "bob"] };
    let (owners, x_owner): (&[&str], &str) = match source {
        Source::Alice => (&[], "alice"),
        Source::Olga => (&["olga"], "olga"),
    };
    GraphSpec::new("private", parties.iter().copied())
        .owners(owners.iter().copied())
        .protocol(protocol)
        .input("x", x_owner, DType::Fixed, vec![Dim::Fixed(N)])
        .input("y", "bob", DType::Fixed, vec![Dim::Fixed(N)])
        .node("r", Op::Relu, ["x"])
        .node("p", Op::Mul, ["x", "y"])
        .node("g", Op::Gt, ["x", "y"])
        .node("s", Op::Add, ["r", "p"])
        .node("sm", Op::Softmax { axis: 0 }, ["x"])
        .output("s", [x_owner])
        .output("sm", [x_owner])
        .output("g", [x_owner])
}

/// Runs the graph under `protocol` with alice's (or olga's) input `x` and returns what bob
/// received: with every op under the protocol, or (`local`) with alice computing on her own
/// input in the clear and sharing the results through input gates.
fn bob_receives(protocol: &str, source: Source, x: &[f64], local: bool) -> Vec<Vec<u8>> {
    let seen = Arc::new(Mutex::new(vec![]));
    let mut reg = mpcflow::builtins();
    reg.add_transport(Arc::new(Recording { inner: MemTransport::new(), seen: seen.clone() }));
    let cfg = SessionConfig { transport: "recording".into(), all_under_protocol: !local, ..Default::default() };
    let s = Session::from_graph(graph(protocol, source), reg).with_config(cfg);
    let y: Vec<f64> = (0..N).map(|i| i as f64 - 7.5).collect();
    rt().block_on(s.run([("x", InputValue::from(x.to_vec())), ("y", InputValue::from(y))])).unwrap();
    seen.lock().unwrap().clone()
}

#[test]
fn no_input_value_appears_in_any_message() {
    let fp = FixedPoint::default();
    let x: Vec<f64> = (0..N).map(|i| 1000.25 + i as f64 * 3.5).collect();
    for (protocol, local) in [("fss2pc", false), ("rep3", false), ("fss2pc", true), ("rep3", true)] {
        for source in [Source::Alice, Source::Olga] {
            let received = bob_receives(protocol, source, &x, local);
            assert!(!received.is_empty());
            for word in x.iter().map(|v| fp.encode(*v).to_le_bytes()) {
                for payload in &received {
                    assert!(
                        !payload.windows(8).any(|w| w == word),
                        "{protocol}: an input word of {source:?} reached bob in the clear"
                    );
                }
            }
        }
    }
}

/// Pearson's chi-square statistic of homogeneity of two 16-bin histograms.
fn chi_square(a: &[u64; 16], b: &[u64; 16]) -> f64 {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    let mut chi = 0.0;
    for i in 0..16 {
        let total = (a[i] + b[i]) as f64;
        for (obs, n) in [(a[i] as f64, na), (b[i] as f64, nb)] {
            let expected = total * n / (na + nb);
            if expected > 0.0 {
                chi += (obs - expected).powi(2) / expected;
            }
        }
    }
    chi
}

#[test]
fn received_bytes_do_not_depend_on_the_other_partys_input() {
    for (protocol, local) in [("fss2pc", false), ("rep3", false), ("fss2pc", true), ("rep3", true)] {
        for source in [Source::Alice, Source::Olga] {
            received_bytes_are_independent_of_the_input(protocol, source, local);
        }
    }
}

fn received_bytes_are_independent_of_the_input(protocol: &str, source: Source, local: bool) {
    let mut hist = [[0u64; 16]; 2];
    let inputs = [vec![0.0; N], vec![12345.678; N]];
    for _ in 0..40 {
        for (h, x) in hist.iter_mut().zip(&inputs) {
            for payload in bob_receives(protocol, source, x, local) {
                for byte in payload {
                    h[(byte >> 4) as usize] += 1;
                }
            }
        }
    }
    assert_eq!(hist[0].iter().sum::<u64>(), hist[1].iter().sum::<u64>(), "{protocol} {source:?}: same message sizes");
    let chi = chi_square(&hist[0], &hist[1]);
    // 15 degrees of freedom; 57.3 is the 1 − 10⁻⁶ quantile (Wilson–Hilferty).
    assert!(chi < 57.3, "{protocol} (local {local}): bob's view depends on {source:?}'s input: chi-square {chi:.1}");
    // The same test does see a difference that is there: alice's input in the clear.
    let clear = |x: &[f64]| {
        let mut h = [0u64; 16];
        for v in x {
            for byte in FixedPoint::default().encode(*v).to_le_bytes() {
                h[(byte >> 4) as usize] += 1000;
            }
        }
        h
    };
    assert!(chi_square(&clear(&inputs[0]), &clear(&inputs[1])) > 57.3);
}
