//! Bounded fuzzing in the ordinary suite: generated and mutated inputs for every parser that
//! reads what a file or a peer controls (the pipeline loader, the ONNX importer, the frame
//! decoder and session handshake, the material file reader). Each must end in a clean error or
//! a value, never a panic; the case counts keep the whole file to a few seconds. A failing case
//! is kept by proptest in `proptest-regressions/` next to this file and replayed first.

use crate::support::root;
use mpcflow::runtime::pipeline::Pipeline;
use mpcflow::runtime::remote::handshake::{Handshake, Introduction, Peer, is_release_version};
use mpcflow::runtime::schedule::frame::{Frame, Kind};
use mpcflow_importer_onnx::{ImportOptions, import};
use mpcflow_sdk::transport::{SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, PartyId};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn graphs() -> Vec<String> {
    // digits_model.yaml names its model relative to the file, which from this crate's directory
    // (where tests run) is the same path.
    ["millionaires.yaml", "hospital_stats.yaml", "digits_inference.yaml", "digits_model.yaml"]
        .iter()
        .map(|f| std::fs::read_to_string(root().join("graphs").join(f)).unwrap())
        .collect()
}

/// `bytes` with `edits` applied: (position as a fraction of the length, new byte), and cut at
/// `keep` (a fraction) when given.
fn mutate(bytes: &[u8], edits: &[(f64, u8)], keep: Option<f64>) -> Vec<u8> {
    let mut v = bytes.to_vec();
    for &(at, b) in edits {
        if !v.is_empty() {
            let i = ((at * v.len() as f64) as usize).min(v.len() - 1);
            v[i] = b;
        }
    }
    if let Some(k) = keep {
        v.truncate((k * v.len() as f64) as usize);
    }
    v
}

fn edits() -> impl Strategy<Value = Vec<(f64, u8)>> {
    prop::collection::vec((0.0f64..1.0, any::<u8>()), 0..8)
}

/// `cases`, or `MPCFLOW_FUZZ_CASES` when set, for a longer hunt than the suite's few seconds:
/// `MPCFLOW_FUZZ_CASES=20000 cargo test --test it fuzz::`.
fn cases(default: u32) -> u32 {
    std::env::var("MPCFLOW_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(default)
}

/// The committed ONNX models the importer reads in the suite: a mutation of each reaches a
/// different part of it (Conv and Gemm, residual blocks, attention, shape ops, embeddings and
/// folded masks).
const MODELS: [&str; 6] = [
    "digits_cnn.onnx",
    "embedding.onnx",
    "misc_ops.onnx",
    "resnet_cifar.onnx",
    "transformer_block.onnx",
    "transformer_manual.onnx",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(192), ..ProptestConfig::default() })]

    /// Mutated pipeline files: parsed and planned, or refused with a message.
    #[test]
    fn pipeline_files(which in 0usize..4, e in edits(), keep in prop::option::of(0.0f64..1.0)) {
        let text = graphs().swap_remove(which);
        let bytes = mutate(text.as_bytes(), &e, keep);
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(mut p) = Pipeline::from_yaml(&text, "fuzz.yaml") {
            let registry = mpcflow::builtins();
            if p.import_models(&registry).is_ok() {
                let _ = mpcflow::runtime::plan::build(&p.spec, &registry, &Default::default());
            }
        }
    }

    /// Arbitrary text as a pipeline file.
    #[test]
    fn pipeline_text(text in "\\PC{0,400}") {
        let _ = Pipeline::from_yaml(&text, "fuzz.yaml");
    }

    /// Mutated and truncated ONNX models.
    #[test]
    fn onnx_models(which in 0..MODELS.len(), e in edits(), keep in prop::option::of(0.0f64..1.0)) {
        let bytes = std::fs::read(root().join("tests/fixtures/onnx").join(MODELS[which])).unwrap();
        let _ = import(&mutate(&bytes, &e, keep), &ImportOptions::default());
    }

    /// Arbitrary bytes as a runtime frame.
    #[test]
    fn frames(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Frame::decode(bytes);
    }
}

/// alice and bob's handshakes over `mem`.
fn pair() -> (Handshake, Handshake) {
    let t = mpcflow_transport_mem::MemTransport::new();
    let info = SessionInfo {
        id: "fuzz".into(),
        parties: vec!["alice".into(), "bob".into()],
        owners: vec![],
        has_dealer: false,
        dealer_window: 4,
        timeout: Duration::from_secs(2),
    };
    let (a, b) = (Endpoint::Party(PartyId(0)), Endpoint::Party(PartyId(1)));
    let hs = |me: &str, e, peer: &str, pe| Handshake {
        me: me.into(),
        link: Arc::from(t.connect(&info, e).unwrap()),
        peers: vec![Peer { endpoint: pe, name: peer.into() }],
        timeout: Duration::from_secs(2),
    };
    (hs("alice", a, "bob", b), hs("bob", b, "alice", a))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    /// A peer's introduction as garbage, as a mutated real one, or as a frame of another kind:
    /// the handshake refuses it with a message.
    #[test]
    fn handshake_introductions(e in edits(), keep in prop::option::of(0.0f64..1.0), kind in 0u8..6) {
        let (alice, bob) = pair();
        let mine = Introduction::new("alice", ("fss2pc", "1"), vec![], BTreeMap::new(), Default::default());
        let theirs = serde_json::to_vec(&Introduction::new("bob", ("fss2pc", "1"), vec![], BTreeMap::new(), Default::default())).unwrap();
        let payload = mutate(&theirs, &e, keep);
        let kind = [Kind::Hello, Kind::Hello, Kind::Hello, Kind::Msg, Kind::Abort, Kind::Bye][kind as usize];
        let frame = Frame { kind, node: 0, round: 0, payload: payload.clone() }.encode();
        bob.link.send(Endpoint::Party(PartyId(0)), frame).unwrap();
        let got = alice.introduce(&mine);
        // Another well-formed mpcflow release of the same session format is accepted by design.
        let other_release = serde_json::from_slice::<Introduction>(&payload).is_ok_and(|i| {
            let same = serde_json::from_slice::<Introduction>(&theirs).unwrap();
            is_release_version(&i.mpcflow) && Introduction { mpcflow: same.mpcflow.clone(), ..i } == same
        });
        if (payload != theirs && !other_release) || kind != Kind::Hello {
            prop_assert!(got.is_err(), "a damaged introduction was accepted");
            let msg = got.err().map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(msg.contains("bob"), "the refusal names the peer: {}", msg);
        }
    }
}

/// Material files with bytes flipped or cut: refused as corrupted before anything is used.
#[test]
fn material_files() {
    use mpcflow::runtime::InputValue;
    use mpcflow::runtime::plan::PlanOptions;
    use mpcflow::runtime::{Session, SessionConfig};
    let dir = std::env::temp_dir().join(format!("mpcflow-fuzz-mat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = SessionConfig { protocol: Some("fss2pc".into()), ..Default::default() };
    let session = |material: Option<&std::path::Path>| {
        let c = SessionConfig { material_dir: material.map(|p| p.to_path_buf()), ..cfg.clone() };
        Session::from_path(&root().join("graphs/millionaires.yaml"), mpcflow::builtins()).unwrap().with_config(c)
    };
    let plan = session(None).plan(PlanOptions::default()).unwrap();
    let rt = crate::support::rt();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 24, ..ProptestConfig::default() });
    runner
        .run(&(edits(), prop::option::of(0.0f64..1.0), 0usize..2), |(e, keep, party)| {
            session(None).deal(&plan, &dir).unwrap();
            let name = ["alice", "bob"][party];
            let path = dir.join(format!("{name}.mpcmat"));
            let bytes = std::fs::read(&path).unwrap();
            let damaged = mutate(&bytes, &e, keep);
            std::fs::write(&path, &damaged).unwrap();
            let inputs = [("alice_wealth", InputValue::from(5i64)), ("bob_wealth", InputValue::from(3i64))];
            let run = rt.block_on(session(Some(&dir)).run(inputs));
            if damaged != bytes {
                let err = run.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(
                    err.contains("checksum mismatch") || err.contains("truncated"),
                    "a damaged file reads as corrupted: {}",
                    err
                );
            }
            Ok(())
        })
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
