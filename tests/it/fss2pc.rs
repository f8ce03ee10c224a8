//! fss2pc, and rep3 (which shares its gates), against the plaintext `ref` protocol: every
//! supported op on random and edge-case inputs, within the bound the protocol states; exact cost accounting; the example graphs.
//!
//! Every run here is planned with `all_under_protocol`: most graphs compute on one party's
//! input, which that party would otherwise compute on in the clear (see `tests/it/local.rs`),
//! and these tests are about the protocols' gates.

use crate::support::{root, rt};
use mpcflow::runtime::{InputValue, RunOutput, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::op::Pool;
use mpcflow_sdk::{DType, FixedPoint, Network, Op};
use proptest::prelude::*;

const ULP: f64 = 1.0 / 65536.0;

fn run(g: &GraphSpec, protocol: &str, inputs: &[(String, InputValue)]) -> RunOutput {
    run_on(g, protocol, inputs, Network::default())
}

fn run_on(g: &GraphSpec, protocol: &str, inputs: &[(String, InputValue)], network: Network) -> RunOutput {
    let cfg =
        SessionConfig { all_under_protocol: true, protocol: Some(protocol.into()), network, ..Default::default() };
    let s = Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg);
    rt().block_on(s.run(inputs.to_vec())).unwrap_or_else(|e| panic!("{protocol}: {e}"))
}

/// Runs `g` under both protocols and checks `y` element by element with `bound(i, ref value)`.
fn compare(
    g: &GraphSpec,
    inputs: &[(String, InputValue)],
    bound: impl Fn(usize, f64) -> f64,
) -> Result<(), TestCaseError> {
    compare_on(g, inputs, bound, Network::default()).map(|_| ())
}

/// [`compare`], with fss2pc planned for `network`; returns fss2pc's run. rep3 runs the same graph
/// with a third computing party (`carol`, who owns nothing and learns nothing) under the same
/// bound: its non-linear gates are fss2pc's, dealt by one computing party to the other two.
fn compare_on(
    g: &GraphSpec,
    inputs: &[(String, InputValue)],
    bound: impl Fn(usize, f64) -> f64,
    network: Network,
) -> Result<RunOutput, TestCaseError> {
    let a = run(g, "ref", inputs);
    let x = a.values("y").unwrap();
    let b = run_on(g, "fss2pc", inputs, network);
    check_run(&x, &b, "fss2pc", &bound)?;
    check_run(&x, &run_on(&with_carol(g), "rep3", inputs, network), "rep3", &bound)?;
    // The same with every input brought by a data owner who computes nothing (bits excepted:
    // owners declare them as ints).
    if g.inputs.iter().all(|i| i.dtype != DType::Bit) {
        let owned = with_owners(g);
        check_run(&x, &run_on(&owned, "fss2pc", inputs, network), "fss2pc with owners", &bound)?;
        check_run(&x, &run_on(&with_carol(&owned), "rep3", inputs, network), "rep3 with owners", &bound)?;
    }
    Ok(b)
}

/// `g` with each party's inputs brought instead by a data owner of its own (`alice_data`, ...),
/// and every output revealed to those owners too: the owners' shares and masks go through the
/// protocol, and the run checks that what the owners unmask equals what the parties see.
fn with_owners(g: &GraphSpec) -> GraphSpec {
    let mut g = g.clone();
    let owner = |p: &str| format!("{p}_data");
    for i in &mut g.inputs {
        let o = owner(&i.owner);
        if !g.owners.contains(&o) {
            g.owners.push(o.clone());
        }
        i.owner = o;
    }
    for o in &mut g.outputs {
        o.reveal_to.extend(g.owners.iter().cloned());
    }
    g
}

/// `g` with a third party, `carol`, for rep3.
fn with_carol(g: &GraphSpec) -> GraphSpec {
    let mut g = g.clone();
    g.parties.push("carol".into());
    g
}

/// Checks `out`'s `y` against `ref`'s values `x` within `bound`, and its measured rounds and
/// bytes against the plan's.
fn check_run(
    x: &[f64],
    out: &RunOutput,
    protocol: &str,
    bound: &impl Fn(usize, f64) -> f64,
) -> Result<(), TestCaseError> {
    let y = out.values("y").unwrap();
    prop_assert_eq!(x.len(), y.len());
    for (i, (r, f)) in x.iter().zip(&y).enumerate() {
        prop_assert!(
            (r - f).abs() <= bound(i, *r) + 1e-12,
            "element {}: ref {} vs {} {} (bound {})",
            i,
            r,
            protocol,
            f,
            bound(i, *r)
        );
    }
    for n in &out.report.nodes {
        prop_assert_eq!(n.rounds, n.predicted_rounds, "{} rounds of {}", protocol, n.name);
        prop_assert_eq!(&n.bytes_sent, &n.predicted_bytes_sent, "{} bytes of {}", protocol, n.name);
        prop_assert_eq!(&n.dealer_bytes, &n.predicted_dealer_bytes, "{} dealer bytes of {}", protocol, n.name);
    }
    Ok(())
}

/// The rounds of node `name` in a run's report.
fn rounds_of(out: &RunOutput, name: &str) -> u32 {
    out.report.nodes.iter().find(|n| n.name == name).map_or(0, |n| n.rounds)
}

fn two(op: Op, sa: Vec<usize>, sb: Vec<usize>, dt: DType) -> GraphSpec {
    GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", dt, sa.into_iter().map(Dim::Fixed).collect())
        .input("b", "bob", dt, sb.into_iter().map(Dim::Fixed).collect())
        .node("y", op, ["a", "b"])
        .output("y", ["alice", "bob"])
}

fn one(op: Op, sa: Vec<usize>, dt: DType) -> GraphSpec {
    GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", dt, sa.into_iter().map(Dim::Fixed).collect())
        .node("y", op, ["a"])
        .output("y", ["bob"])
}

fn real(shape: &[usize], v: &[f64]) -> InputValue {
    InputValue::Real { shape: shape.to_vec(), values: v.to_vec() }
}

fn ins(a: InputValue, b: Option<InputValue>) -> Vec<(String, InputValue)> {
    let mut v = vec![("a".to_string(), a)];
    if let Some(b) = b {
        v.push(("b".to_string(), b));
    }
    v
}

/// Fixed-point values: random, plus zeros, ±1 ulp and large magnitudes mixed in.
fn fixed_values(n: usize, max: f64) -> impl Strategy<Value = Vec<f64>> {
    let edge = prop_oneof![Just(0.0), Just(ULP), Just(-ULP), Just(max), Just(-max), Just(1.0), Just(-1.0)];
    let any = (-max..max).prop_map(|x: f64| (x * 65536.0).round() / 65536.0);
    proptest::collection::vec(prop_oneof![3 => any, 1 => edge], n)
}

fn cfg() -> ProptestConfig {
    ProptestConfig { cases: 12, max_shrink_iters: 20, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn linear_ops_are_exact(a in fixed_values(6, 1e6), b in fixed_values(6, 1e6)) {
        let sa = vec![2, 3];
        for op in [Op::Add, Op::Sub] {
            compare(&two(op, sa.clone(), sa.clone(), DType::Fixed), &ins(real(&sa, &a), Some(real(&sa, &b))), |_, _| 0.0)?;
        }
        for op in [
            Op::Neg,
            Op::Sum { axes: vec![1], keepdims: false },
            Op::Transpose { perm: vec![] },
            Op::Reshape { shape: vec![3, -1] },
            Op::Slice { starts: vec![1], ends: vec![3], axes: vec![1], steps: vec![] },
            Op::Broadcast { shape: vec![2, 2, 3] },
            Op::Shift { bits: 3 },
        ] {
            compare(&one(op, sa.clone(), DType::Fixed), &ins(real(&sa, &a), None), |_, _| 0.0)?;
        }
        let g = GraphSpec::new("t", ["alice", "bob"])
            .input("a", "alice", DType::Fixed, vec![Dim::Fixed(6)])
            .input("b", "bob", DType::Fixed, vec![Dim::Fixed(6)])
            .node("y", Op::Concat { axis: 0 }, ["a", "b", "a"])
            .output("y", ["alice"]);
        compare(&g, &ins(real(&[6], &a), Some(real(&[6], &b))), |_, _| 0.0)?;
    }

    #[test]
    fn fixed_products_within_one_ulp(a in fixed_values(6, 3e3), b in fixed_values(6, 3e3)) {
        let sa = vec![2, 3];
        compare(&two(Op::Mul, sa.clone(), sa.clone(), DType::Fixed), &ins(real(&sa, &a), Some(real(&sa, &b))), |_, _| ULP)?;
        compare(&two(Op::Mul, sa.clone(), vec![3], DType::Fixed), &ins(real(&sa, &a), Some(real(&[3], &b[..3]))), |_, _| ULP)?;
        compare(&two(Op::Matmul, vec![2, 3], vec![3, 2], DType::Fixed), &ins(real(&[2, 3], &a), Some(real(&[3, 2], &b))), |_, _| ULP)?;
    }

    #[test]
    fn int_products_and_shifts(a in proptest::collection::vec(-1_000_000i64..1_000_000, 6), b in proptest::collection::vec(-1_000_000i64..1_000_000, 6)) {
        let iv = |v: &[i64], s: &[usize]| InputValue::Int { shape: s.to_vec(), values: v.to_vec() };
        compare(&two(Op::Mul, vec![6], vec![6], DType::Int), &ins(iv(&a, &[6]), Some(iv(&b, &[6]))), |_, _| 0.0)?;
        compare(&two(Op::Matmul, vec![2, 3], vec![3, 2], DType::Int), &ins(iv(&a, &[2, 3]), Some(iv(&b, &[3, 2]))), |_, _| 0.0)?;
        compare(&one(Op::Shift { bits: -4 }, vec![6], DType::Int), &ins(iv(&a, &[6]), None), |_, _| 1.0)?;
    }

    #[test]
    fn conv2d_within_one_ulp(x in fixed_values(32, 50.0), w in fixed_values(24, 2.0)) {
        let op = Op::Conv2d { stride: [2, 1], padding: [1, 1] };
        compare(&two(op, vec![1, 2, 4, 4], vec![3, 2, 2, 2], DType::Fixed), &ins(real(&[1, 2, 4, 4], &x), Some(real(&[3, 2, 2, 2], &w))), |_, _| ULP)?;
    }

    #[test]
    fn scale_and_mean_within_stated_bounds(a in fixed_values(8, 1e4), factor in -100.0f64..100.0) {
        // The factor is encoded as ref encodes it: within 1 ulp (rounding ties).
        compare(&one(Op::Scale { factor }, vec![8], DType::Fixed), &ins(real(&[8], &a), None), |_, _| ULP)?;
        let ints: Vec<i64> = a.iter().map(|v| *v as i64).collect();
        let iv = InputValue::Int { shape: vec![8], values: ints.clone() };
        compare(&one(Op::Scale { factor }, vec![8], DType::Int), &ins(iv, None), |i, _| (ints[i].unsigned_abs() as f64 / 2.0 + 1.0) * ULP)?;
        // Division by a public count: within 1 + |mean|/256 ulp (see fss2pc's lowering docs).
        compare(&one(Op::Mean { axes: vec![], keepdims: false }, vec![8], DType::Fixed), &ins(real(&[8], &a), None), |_, r| (r.abs() / 256.0 + 1.5) * ULP)?;
    }

    #[test]
    fn comparisons_relu_max_min_select_are_exact(a in fixed_values(8, 1e9), b in fixed_values(8, 1e9), same in proptest::collection::vec(any::<bool>(), 8)) {
        // Equal operands in about half of the positions.
        let b: Vec<f64> = b.iter().zip(&a).zip(&same).map(|((b, a), s)| if *s { *a } else { *b }).collect();
        for op in [Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Eq, Op::Max { axis: None }, Op::Min { axis: None }] {
            compare(&two(op, vec![8], vec![8], DType::Fixed), &ins(real(&[8], &a), Some(real(&[8], &b))), |_, _| 0.0)?;
        }
        compare(&one(Op::Relu, vec![8], DType::Fixed), &ins(real(&[8], &a), None), |_, _| 0.0)?;
        let g = GraphSpec::new("t", ["alice", "bob"])
            .input("a", "alice", DType::Fixed, vec![Dim::Fixed(8)])
            .input("b", "bob", DType::Fixed, vec![Dim::Fixed(8)])
            .node("c", Op::Gt, ["a", "b"])
            .node("y", Op::Select, ["c", "b", "a"])
            .output("y", ["alice", "bob"]);
        compare(&g, &ins(real(&[8], &a), Some(real(&[8], &b))), |_, _| 0.0)?;
    }
}

proptest! {
    #![proptest_config(cfg())]

    /// A joint histogram: fixed values (some exactly on an edge, some past both ends) and int
    /// values with fractional edges, counted exactly as `ref` counts them; and as numpy does.
    #[test]
    fn histograms_count_exactly(x in fixed_values(40, 300.0), cuts in proptest::collection::vec(-250.0f64..250.0, 1..6)) {
        let mut edges: Vec<f64> = cuts.iter().map(|c| (c * 4.0).round() / 4.0).collect();
        edges.extend([-200.0, 200.0]);
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        let mut x = x;
        x.extend(edges.iter().copied());
        let n = x.len();
        let op = Op::Histogram { edges: edges.clone() };
        compare(&one(op.clone(), vec![n], DType::Fixed), &ins(real(&[n], &x), None), |_, _| 0.0)?;
        let out = run(&one(op, vec![n], DType::Fixed), "fss2pc", &ins(real(&[n], &x), None));
        let k = edges.len() - 1;
        let numpy: Vec<f64> = (0..k)
            .map(|i| x.iter().filter(|&&v| v >= edges[i] && (v < edges[i + 1] || (i == k - 1 && v == edges[k]))).count() as f64)
            .collect();
        prop_assert_eq!(out.values("y").unwrap(), numpy);
        let ints: Vec<f64> = x.iter().map(|v| v.round()).collect();
        let half: Vec<f64> = edges.iter().map(|e| e + 0.5).collect();
        compare(&one(Op::Histogram { edges: half }, vec![n], DType::Int), &ins(real(&[n], &ints), None), |_, _| 0.0)?;
    }

    #[test]
    fn reductions_and_pooling(x in fixed_values(2 * 2 * 5 * 5, 1e3)) {
        let shape = vec![2, 2, 5, 5];
        let input = || ins(real(&shape, &x), None);
        // Coarse values so that ties are common: argmax must pick the first maximum.
        let coarse: Vec<f64> = x.iter().map(|v| (v / 300.0).round()).collect();
        for op in [Op::Argmax { axis: 3, one_hot: false }, Op::Argmax { axis: 1, one_hot: true }, Op::Argmax { axis: -2, one_hot: false }] {
            compare(&one(op, shape.clone(), DType::Fixed), &ins(real(&shape, &coarse), None), |_, _| 0.0)?;
        }
        for op in [Op::Max { axis: Some(3) }, Op::Min { axis: Some(0) }, Op::Max { axis: Some(-2) }] {
            compare(&one(op, shape.clone(), DType::Fixed), &input(), |_, _| 0.0)?;
        }
        for p in [Pool { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, Pool { kernel: [3, 2], stride: [1, 2], padding: [1, 1] }] {
            compare(&one(Op::Maxpool(p.clone()), shape.clone(), DType::Fixed), &input(), |_, _| 0.0)?;
            // avgpool: an exact division by the area, within 1 + |mean|/256 ulp.
            compare(&one(Op::Avgpool(p), shape.clone(), DType::Fixed), &input(), |_, r| (r.abs() / 256.0 + 1.5) * ULP)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..cfg() })]

    /// Table lookups within their stated bounds of `ref` (see `gates::lut`) on random inputs.
    #[test]
    fn smooth_functions_within_interpolation_bound(x in proptest::collection::vec(-20.0f64..20.0, 12)) {
        let mut x = x;
        x.extend([0.0, ULP, -ULP, -8.0, 7.99, -16.0]);
        let n = x.len();
        let exp_x: Vec<f64> = x.iter().map(|v| v.min(7.9)).collect();
        compare(&one(Op::Exp, vec![n], DType::Fixed), &ins(real(&[n], &exp_x), None), |_, r| (1.2 * r.abs() + 2.0) * ULP)?;
        compare(&one(Op::Sigmoid, vec![n], DType::Fixed), &ins(real(&[n], &x), None), |_, _| 2.0 * ULP)?;
        compare(&one(Op::Tanh, vec![n], DType::Fixed), &ins(real(&[n], &x), None), |_, _| 2.0 * ULP)?;
        compare(&one(Op::Gelu, vec![n], DType::Fixed), &ins(real(&[n], &x), None), |_, _| 2.0 * ULP)?;
        // 180 elements on `local` read the tables by one-hot shares (a round more than the key:
        // six with DCF borrows, eight with opened ones).
        let many: Vec<f64> = (0..10).flat_map(|k| x.iter().map(move |v| v + k as f64 * 0.013)).collect();
        let m = many.len();
        let exp_many: Vec<f64> = many.iter().map(|v| v.min(7.9)).collect();
        for (op, xs) in [(Op::Exp, &exp_many), (Op::Sigmoid, &many), (Op::Tanh, &many), (Op::Gelu, &many)] {
            let bound = |r: f64| if op == Op::Exp { (1.2 * r.abs() + 2.0) * ULP } else { 2.0 * ULP };
            let out = compare_on(&one(op.clone(), vec![m], DType::Fixed), &ins(real(&[m], xs), None), |_, r| bound(r), Network::Local)?;
            let rounds = rounds_of(&out, "y");
            prop_assert!(rounds == 6 || rounds == 8, "{:?}: {} rounds", op, rounds);
        }
    }
}

#[test]
fn means_of_large_values_and_of_ints() {
    // Up to |mean| < 2^24 at f = 16, for any count.
    let x = vec![200_000.0, 200_001.5, -3.25, 199_999.0];
    compare(
        &one(Op::Mean { axes: vec![], keepdims: false }, vec![4], DType::Fixed),
        &ins(real(&[4], &x), None),
        |_, r| (r.abs() / 256.0 + 1.5) * ULP,
    )
    .unwrap();
    let big: Vec<f64> = (0..5000).map(|i| 1e6 + (i % 17) as f64).collect();
    compare(
        &one(Op::Mean { axes: vec![0], keepdims: true }, vec![5000], DType::Fixed),
        &ins(real(&[5000], &big), None),
        |_, r| (r.abs() / 256.0 + 1.5) * ULP,
    )
    .unwrap();
    // An int mean over a power-of-two count, and an int avgpool.
    let iv = InputValue::Int { shape: vec![8], values: vec![1, -7, 3, 9, 12, 0, 5, 2] };
    compare(&one(Op::Mean { axes: vec![], keepdims: false }, vec![8], DType::Int), &ins(iv, None), |_, r| {
        (r.abs() / 256.0 + 1.5) * ULP
    })
    .unwrap();
    let iv = InputValue::Int { shape: vec![1, 1, 4, 4], values: (0..16).map(|v| v * 3 - 20).collect() };
    let p = Pool { kernel: [2, 2], stride: [2, 2], padding: [0, 0] };
    compare(&one(Op::Avgpool(p), vec![1, 1, 4, 4], DType::Int), &ins(iv, None), |_, r| (r.abs() / 256.0 + 1.5) * ULP)
        .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 10, ..ProptestConfig::default() })]

    /// Tensors large enough that the `local` profile picks the two-round form (half-tree
    /// DReLU, then a select): exact on random and edge values, at full and narrow widths, and
    /// the form shows in the rounds.
    #[test]
    fn two_round_comparisons_and_relu_are_exact(a in fixed_values(600, 1e9), b in fixed_values(600, 1e9), same in proptest::collection::vec(any::<bool>(), 600), bits in prop_oneof![Just(64u32), Just(40), Just(33)]) {
        let limit = 2f64.powi(bits as i32 - 2 - 16) - 1.0;
        let clamp = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x.clamp(-limit, limit)).collect() };
        let a = clamp(&a);
        let b: Vec<f64> = clamp(&b).iter().zip(&a).zip(&same).map(|((b, a), s)| if *s { *a } else { *b }).collect();
        let with_bits = |mut g: GraphSpec| {
            g.fixed_point = FixedPoint::default().with_compare_bits(bits);
            g
        };
        let local = Network::Local;
        for op in [Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Max { axis: None }] {
            let g = with_bits(two(op.clone(), vec![600], vec![600], DType::Fixed));
            let out = compare_on(&g, &ins(real(&[600], &a), Some(real(&[600], &b))), |_, _| 0.0, local)?;
            if !matches!(op, Op::Max { .. }) {
                prop_assert_eq!(rounds_of(&out, "y"), 2, "{:?} in two rounds", op);
            }
        }
        let out = compare_on(&with_bits(one(Op::Relu, vec![600], DType::Fixed)), &ins(real(&[600], &a), None), |_, _| 0.0, local)?;
        prop_assert_eq!(rounds_of(&out, "y"), 2, "relu in two rounds");
    }

    /// Products and scales large enough that `local` learns the truncation's borrow as a bit:
    /// within the same bounds as the one-round form.
    #[test]
    fn bit_borrow_truncations_within_the_same_bounds(a in fixed_values(600, 3e3), b in fixed_values(600, 3e3), factor in -100.0f64..100.0) {
        let local = Network::Local;
        let ab = ins(real(&[600], &a), Some(real(&[600], &b)));
        let out = compare_on(&two(Op::Mul, vec![600], vec![600], DType::Fixed), &ab, |_, _| ULP, local)?;
        prop_assert_eq!(rounds_of(&out, "y"), 3, "product, borrow bits, truncation");
        let out = compare_on(&one(Op::Scale { factor }, vec![600], DType::Fixed), &ins(real(&[600], &a), None), |_, _| ULP, local)?;
        prop_assert_eq!(rounds_of(&out, "y"), 2, "borrow bits, truncation");
        let out = compare_on(&one(Op::Shift { bits: -16 }, vec![600], DType::Fixed), &ins(real(&[600], &a), None), |_, _| ULP, local)?;
        prop_assert_eq!(rounds_of(&out, "y"), 2, "a right shift by 16 too");
    }
}

proptest! {
    #![proptest_config(cfg())]

    /// With `compare_bits: 40` the comparison keys are 39-level DCFs, exact for |x − y| < 2^39
    /// words (±2^22 at f = 16).
    #[test]
    fn narrow_comparisons(a in fixed_values(8, 4e6), b in fixed_values(8, 4e6)) {
        let fp = FixedPoint::default().with_compare_bits(40);
        let with_fp = |mut g: GraphSpec| {
            g.fixed_point = fp;
            g
        };
        for op in [Op::Gt, Op::Le, Op::Max { axis: None }] {
            compare(&with_fp(two(op, vec![8], vec![8], DType::Fixed)), &ins(real(&[8], &a), Some(real(&[8], &b))), |_, _| 0.0)?;
        }
        compare(&with_fp(one(Op::Relu, vec![8], DType::Fixed)), &ins(real(&[8], &a), None), |_, _| 0.0)?;
    }
}

#[test]
fn narrow_comparisons_use_smaller_keys() {
    let plan = |bits: u32| {
        let mut g = one(Op::Relu, vec![1000], DType::Fixed);
        g.fixed_point = FixedPoint::default().with_compare_bits(bits);
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
        let p = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        p.nodes.iter().find(|n| n.desc.name == "y").unwrap().cost.dealer_bytes[1]
    };
    let (full, narrow) = (plan(64), plan(32));
    assert!(narrow * 10 < full * 6, "32-bit relu material {narrow} B vs 64-bit {full} B");
}

#[test]
fn large_elementwise_gates_run_in_chunks() {
    let n = 40_000;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 2001) as f64 / 10.0 - 100.0).collect();
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(n)])
        .constant("t", DType::Fixed, vec![], vec![3.5])
        .node("r", Op::Relu, ["a"])
        .node("c", Op::Gt, ["a", "t"])
        .node("y", Op::Mul, ["r", "c"])
        .output("y", ["alice"]);
    compare(&g, &ins(real(&[n], &x), None), |_, _| 0.0).unwrap();
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let plan = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
    let relus: Vec<_> = plan.nodes.iter().filter(|n| n.desc.kind.label() == "relu").collect();
    assert_eq!(relus.len(), 2, "40,000 elements in chunks of 32,768");
    let relu_rounds = relus.iter().map(|n| n.cost.rounds).max().unwrap();
    assert_eq!(relu_rounds, 2, "chunks this large take the two-round form on `lan`");
    assert_eq!(
        plan.critical_rounds(),
        1 + relu_rounds + 1 + 1,
        "chunks run side by side: input, relu ∥ gt, mul, output"
    );
    // A flat input is sliced as it is: no reshape copies its planes.
    let reshapes = plan.nodes.iter().filter(|n| n.desc.kind.label() == "reshape").count();
    assert_eq!(reshapes, 0, "a flat gate's chunks come straight from its input");
    // A scalar of higher rank broadcasts the output up: such gates are not chunked.
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(n)])
        .constant("t", DType::Fixed, vec![1, 1], vec![3.5])
        .node("y", Op::Gt, ["a", "t"])
        .output("y", ["alice"]);
    compare(&g, &ins(real(&[n], &x), None), |_, _| 0.0).unwrap();
    // A 2-D input with a one-element operand of its rank, in chunks of unequal length
    // (60,000 elements): each chunk keeps its own shape, and the result the input's.
    let (rows, cols) = (300, 200);
    let x2: Vec<f64> = (0..rows * cols).map(|i| ((i * 7919) % 2001) as f64 / 10.0 - 100.0).collect();
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(rows), Dim::Fixed(cols)])
        .constant("t", DType::Fixed, vec![1, 1], vec![3.5])
        .node("y", Op::Gt, ["a", "t"])
        .output("y", ["alice"]);
    compare(&g, &ins(real(&[rows, cols], &x2), None), |_, _| 0.0).unwrap();
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let plan = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
    let chunks = plan.nodes.iter().filter(|n| n.desc.kind.label() == "gt").count();
    assert_eq!(chunks, 2, "60,000 comparisons in chunks of 32,768");
}

#[test]
fn extreme_representable_values() {
    let fp = FixedPoint::default();
    let (max, min) = (fp.max_value(), fp.min_value());
    // Linear ops wrap exactly like ref on the whole ring. Values past the input range
    // (2^62 words) come in as encoded tensors, which the embedding API takes as they are.
    let a = vec![max, min, ULP, -ULP, 0.0, max];
    let b = vec![max, max, min, 1.0, min, -ULP];
    let words = |v: &[f64]| InputValue::Tensor(mpcflow_sdk::Tensor::from_f64(DType::Fixed, vec![6], v, fp).unwrap());
    for op in [Op::Add, Op::Sub] {
        compare(&two(op, vec![6], vec![6], DType::Fixed), &ins(words(&a), Some(words(&b))), |_, _| 0.0).unwrap();
    }
    compare(&one(Op::Neg, vec![6], DType::Fixed), &ins(words(&a), None), |_, _| 0.0).unwrap();
    // Comparisons and ReLU at the edge of their stated range: operands within ±2^62 words.
    let edge = 2f64.powi(62 - 16) - 1.0;
    let a = vec![edge, -edge, edge, 0.0, -edge, ULP];
    let b = vec![-edge, edge, edge, -edge, -edge, 0.0];
    for op in [Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Eq] {
        compare(&two(op, vec![6], vec![6], DType::Fixed), &ins(real(&[6], &a), Some(real(&[6], &b))), |_, _| 0.0)
            .unwrap();
    }
    compare(&one(Op::Relu, vec![6], DType::Fixed), &ins(real(&[6], &a), None), |_, _| 0.0).unwrap();
}

#[test]
fn public_operands_and_constants() {
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(4)])
        .constant("c", DType::Fixed, vec![4], vec![0.5, -2.0, 3.25, 0.0])
        .constant("t", DType::Fixed, vec![], vec![1.0])
        .node("p", Op::Mul, ["a", "c"])
        .node("q", Op::Add, ["p", "t"])
        .node("g", Op::Gt, ["a", "t"])
        .node("n", Op::Count { axes: vec![] }, ["a"])
        .node("y", Op::Concat { axis: 0 }, ["q", "p"])
        .output("y", ["alice"])
        .output("g", ["bob"])
        .output("n", ["alice", "bob"]);
    let inputs = ins(real(&[4], &[1.5, -0.75, 2.0, 9.0]), None);
    let (a, b) = (run(&g, "ref", &inputs), run(&g, "fss2pc", &inputs));
    assert_eq!(a.values("y"), b.values("y"));
    assert_eq!(a.values("g"), b.values("g"));
    assert_eq!(b.values("n"), Some(vec![4.0]));
    // A public output costs nothing to reveal.
    let n = b.report.nodes.iter().find(|n| n.name == "output:n").unwrap();
    assert_eq!((n.rounds, n.bytes_sent.clone()), (0, vec![0, 0]));
}

/// Products where one party holds an operand (its input, or a value computed from its inputs
/// alone) skip the other party's multiplication by its zero share of that operand's mask: every
/// combination of holders gives `ref`'s exact words, ints and fixed point, matmul and mul.
#[test]
fn products_with_operands_one_party_holds() {
    let ints = |s: &[usize], k: i64| InputValue::Int { shape: s.to_vec(), values: (0..6).map(|v| v * k - 7).collect() };
    let fixed = |s: &[usize], k: f64| real(s, &(0..6).map(|v| (v as f64 * k - 2.5) / 3.0).collect::<Vec<_>>());
    for dtype in [DType::Int, DType::Fixed] {
        for (left, right) in [
            ("alice", "alice"),
            ("bob", "bob"),
            ("alice", "bob"),
            ("bob", "alice"),
            ("shared", "alice"),
            ("bob", "shared"),
        ] {
            // `shared` is the sum of one input of each party: secret to both.
            let g = GraphSpec::new("t", ["alice", "bob"])
                .input("a1", "alice", dtype, vec![Dim::Fixed(2), Dim::Fixed(3)])
                .input("b1", "bob", dtype, vec![Dim::Fixed(2), Dim::Fixed(3)])
                .input("a2", "alice", dtype, vec![Dim::Fixed(3), Dim::Fixed(2)])
                .input("b2", "bob", dtype, vec![Dim::Fixed(3), Dim::Fixed(2)])
                .node("shared1", Op::Add, ["a1", "b1"])
                .node("shared2", Op::Add, ["a2", "b2"])
                .node("alice1", Op::Neg, ["a1"])
                .node("bob1", Op::Neg, ["b1"])
                .node("alice2", Op::Transpose { perm: vec![1, 0] }, ["a1"])
                .node("bob2", Op::Transpose { perm: vec![1, 0] }, ["b1"])
                .node("y", Op::Matmul, [format!("{left}1"), format!("{right}2")])
                .node("m", Op::Mul, [format!("{left}1"), format!("{right}1")])
                .output("y", ["alice", "bob"])
                .output("m", ["alice"]);
            let inputs: Vec<(String, InputValue)> =
                [("a1", [2, 3], 3), ("b1", [2, 3], -2), ("a2", [3, 2], 5), ("b2", [3, 2], 1)]
                    .into_iter()
                    .map(|(name, shape, k)| {
                        let v = if dtype == DType::Int { ints(&shape, k) } else { fixed(&shape, k as f64) };
                        (name.to_string(), v)
                    })
                    .collect();
            let (a, b) = (run(&g, "ref", &inputs), run(&g, "fss2pc", &inputs));
            let bound = if dtype == DType::Int { 0.0 } else { ULP };
            for name in ["y", "m"] {
                let (x, y) = (a.values(name).unwrap(), b.values(name).unwrap());
                for (r, f) in x.iter().zip(&y) {
                    assert!((r - f).abs() <= bound, "{left} × {right}, {dtype:?} {name}: ref {r}, fss2pc {f}");
                }
            }
        }
    }
}

#[test]
fn example_graphs_match_ref() {
    let mill = Session::from_path(&root().join("graphs/millionaires.yaml"), mpcflow::builtins()).unwrap();
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let mill = mill.with_config(cfg.clone());
    for (a, b, expect) in
        [(5_000_000i64, 3_000_000i64, 1.0), (3, 5, 0.0), (7, 7, 0.0), (-1, -2, 1.0), (1 << 61, -(1 << 61), 1.0)]
    {
        let out = rt()
            .block_on(mill.run([("alice_wealth", InputValue::from(a)), ("bob_wealth", InputValue::from(b))]))
            .unwrap();
        assert_eq!(out.values("alice_richer").unwrap(), vec![expect], "{a} vs {b}");
    }
    let col =
        |f: &str| mpcflow::io::input_arg::read_csv_column(&root().join("graphs/data").join(f), "systolic_bp").unwrap();
    let inputs = [("north_bp", col("north.csv")), ("south_bp", col("south.csv"))];
    let path = root().join("graphs/hospital_stats.yaml");
    let ref_cfg = SessionConfig { all_under_protocol: true, protocol: Some("ref".into()), ..Default::default() };
    let r = rt()
        .block_on(Session::from_path(&path, mpcflow::builtins()).unwrap().with_config(ref_cfg).run(inputs.clone()))
        .unwrap();
    let f =
        rt().block_on(Session::from_path(&path, mpcflow::builtins()).unwrap().with_config(cfg).run(inputs)).unwrap();
    assert_eq!(f.values("n_patients"), r.values("n_patients"));
    assert_eq!(f.values("n_high"), r.values("n_high"));
    // mean: sum (53,900) / 413 through a 30-bit scale: within 1 + 53,900/2^15 ulp.
    let close = |k: &str, ulps: f64| {
        let (x, y) = (r.values(k).unwrap()[0], f.values(k).unwrap()[0]);
        assert!((x - y).abs() <= ulps * ULP, "{k}: ref {x} vs fss2pc {y}");
    };
    close("mean_bp", 3.0);
    // var: 413 squares each within 1 ulp plus the centring error, then the same scale.
    close("var_bp", 8.0);
    for n in &f.report.nodes {
        assert_eq!(
            (n.rounds, &n.bytes_sent, &n.dealer_bytes),
            (n.predicted_rounds, &n.predicted_bytes_sent, &n.predicted_dealer_bytes),
            "{}",
            n.name
        );
    }
}

#[test]
fn unsupported_ops_are_refused_at_plan_time() {
    // A fixed-point setting a gate cannot handle is refused by the planner, not at run time.
    let mut g = one(Op::Exp, vec![3], DType::Fixed);
    g.fixed_point = FixedPoint::new(4);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let err =
        Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap_err().to_string();
    assert!(
        err.contains("node `y`: `exp`: fss2pc computes exp on fixed-point values with 5 ≤ frac_bits ≤ 24"),
        "{err}"
    );
    let mut g = one(Op::Reciprocal, vec![3], DType::Fixed);
    g.fixed_point = FixedPoint::new(23);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let err =
        Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap_err().to_string();
    assert!(
        err.contains(
            "node `y`: `reciprocal`: fss2pc computes reciprocal on fixed-point values with 1 ≤ frac_bits ≤ 22"
        ),
        "{err}"
    );
}

/// The root gate's relative error at f = 16 (see `gates::root`): `|Δ| ≤ ROOT_REL·|ref| + 1` ulp.
const ROOT_REL: f64 = 1.0 / (1u64 << 20) as f64;

fn root_bound(r: f64) -> f64 {
    ROOT_REL * r.abs() + ULP
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..cfg() })]

    /// reciprocal, rsqrt, sqrt: within `2^-20·|ref| + 1` ulp; exactly ref's saturated values at
    /// 0 and below (reciprocal(0), rsqrt(x ≤ 0): i64::MAX; sqrt(x ≤ 0): 0).
    #[test]
    fn roots_within_relative_bound(x in fixed_values(10, 1e4), small in fixed_values(6, 0.01), big in proptest::collection::vec(1e4f64..1e9, 3)) {
        let mut x = x;
        x.extend(small);
        x.extend(big.iter().map(|v| v.round()));
        x.extend([3.0 * ULP, 2.0, 0.5, 4.0, 1e-3]);
        let n = x.len();
        let neg: Vec<f64> = x.iter().map(|v| -v).collect();
        for op in [Op::Reciprocal, Op::Rsqrt, Op::Sqrt] {
            compare(&one(op.clone(), vec![n], DType::Fixed), &ins(real(&[n], &x), None), |_, r| root_bound(r))?;
        }
        compare(&one(Op::Reciprocal, vec![n], DType::Fixed), &ins(real(&[n], &neg), None), |_, r| root_bound(r))?;
    }

    /// div: `a · reciprocal(b)`, within `2^-20·|ref| + (|a| + 2)` ulp.
    #[test]
    fn div_within_bound(a in fixed_values(8, 1e3), b in fixed_values(8, 1e3)) {
        let b: Vec<f64> = b.iter().map(|v| if *v == 0.0 { 1.5 } else { *v }).collect();
        let bound = |i: usize, r: f64| ROOT_REL * r.abs() + (a[i].abs() + 2.0) * ULP;
        compare(&two(Op::Div, vec![8], vec![8], DType::Fixed), &ins(real(&[8], &a), Some(real(&[8], &b))), bound)?;
        let iv = InputValue::Int { shape: vec![8], values: a.iter().map(|v| *v as i64).collect() };
        let ib = InputValue::Int { shape: vec![8], values: b.iter().map(|v| if v.abs() < 1.0 { 3 } else { *v as i64 }).collect() };
        let ai: Vec<f64> = a.iter().map(|v| (*v as i64) as f64).collect();
        let bound = |i: usize, r: f64| ROOT_REL * r.abs() + (ai[i].abs() + 2.0) * ULP;
        compare(&two(Op::Div, vec![8], vec![8], DType::Int), &ins(iv, Some(ib)), bound)?;
    }

    /// softmax: within `(7 + 4.1·n·y)` ulp for lane length `n`.
    #[test]
    fn softmax_within_bound(x in proptest::collection::vec(-12.0f64..12.0, 10)) {
        let x: Vec<f64> = x.iter().map(|v| (v * 65536.0).round() / 65536.0).collect();
        for (axis, n) in [(-1i64, 5.0), (0, 2.0)] {
            compare(&one(Op::Softmax { axis }, vec![2, 5], DType::Fixed), &ins(real(&[2, 5], &x), None), |_, r| (7.0 + 4.1 * n * r.abs()) * ULP)?;
        }
    }

    /// layernorm: within twice the propagated bound of `mean`, the squares and `rsqrt`.
    #[test]
    fn layernorm_within_bound(x in proptest::collection::vec(-100.0f64..100.0, 18)) {
        let x: Vec<f64> = x.iter().map(|v| (v * 65536.0).round() / 65536.0).collect();
        let eps = 1e-5;
        let bounds = layernorm_bounds(&x, 6, eps, 1.0);
        compare(&one(Op::Layernorm { axis: -1, epsilon: eps }, vec![3, 6], DType::Fixed), &ins(real(&[3, 6], &x), None), |i, _| bounds[i])?;
    }

    /// layernorm with an epsilon below one ulp (BERT's 1e-12, and 0): computed with one ulp,
    /// within the bound plus the change's own term; a constant lane gives 0 (ref's value), not
    /// rsqrt's saturation.
    #[test]
    fn layernorm_with_an_epsilon_below_one_ulp(x in proptest::collection::vec(-100.0f64..100.0, 12), eps in prop_oneof![Just(0.0), Just(1e-12), Just(1e-6)]) {
        let mut x: Vec<f64> = x.iter().map(|v| (v * 65536.0).round() / 65536.0).collect();
        x.extend([x[0]; 6]);
        let bounds = layernorm_bounds(&x, 6, eps, 1.0);
        compare(&one(Op::Layernorm { axis: -1, epsilon: eps }, vec![3, 6], DType::Fixed), &ins(real(&[3, 6], &x), None), |i, _| bounds[i])?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..cfg() })]

    /// onehot: exact under fss2pc (one table key per index, see `gates::onehot`) and rep3
    /// (equality tests), for int and fixed indices with the first and last class among them,
    /// at depths from 1 to a vocabulary's; rounds and bytes as planned.
    #[test]
    fn onehot_rows_are_exact(depth in prop_oneof![Just(1usize), Just(2), Just(5), Just(300), Just(30522)], picks in proptest::collection::vec(any::<u32>(), 4)) {
        let mut ids: Vec<i64> = picks.iter().map(|p| (*p as usize % depth) as i64).collect();
        ids.extend([0, depth as i64 - 1]);
        let n = ids.len();
        let g = one(Op::OneHot { depth }, vec![n], DType::Int);
        compare(&g, &ins(InputValue::Int { shape: vec![n], values: ids.clone() }, None), |_, _| 0.0)?;
        let fx: Vec<f64> = ids.iter().map(|&i| i as f64).collect();
        compare(&one(Op::OneHot { depth }, vec![2, n / 2], DType::Fixed), &ins(real(&[2, n / 2], &fx), None), |_, _| 0.0)?;
    }
}

/// A product with more than a million outputs (a language model's logits) runs as products of
/// column blocks, each its own material frame: the same values as `ref` within the product's
/// ulp, with the blocks in the report.
#[test]
fn a_large_matrix_product_runs_in_column_blocks() {
    let n = (1 << 19) + 3;
    let a: Vec<f64> = (0..16).map(|i| (i as f64 - 7.5) / 4.0).collect();
    let b: Vec<f64> = (0..8 * n).map(|i| ((i * 7919) % 2001) as f64 / 1000.0 - 1.0).collect();
    let g = two(Op::Matmul, vec![2, 8], vec![8, n], DType::Fixed);
    let out = compare_on(&g, &ins(real(&[2, 8], &a), Some(real(&[8, n], &b))), |_, _| ULP, Network::default()).unwrap();
    let blocks = out.report.nodes.iter().filter(|r| r.op == "matmul").count();
    assert_eq!(blocks, 2, "two column blocks of at most 2^20 outputs");
}

/// A convolution with more than a million outputs runs as convolutions with blocks of its
/// output channels: the same values as `ref`, with the blocks in the report.
#[test]
fn a_large_convolution_runs_in_output_channel_blocks() {
    let (n, c, h, o) = (1, 2, 182, 40);
    let x: Vec<f64> = (0..n * c * h * h).map(|i| ((i * 7919) % 2001) as f64 / 1000.0 - 1.0).collect();
    let w: Vec<f64> = (0..o * c * 9).map(|i| ((i * 31) % 17) as f64 / 16.0 - 0.5).collect();
    let op = Op::Conv2d { stride: [1, 1], padding: [1, 1] };
    let g = two(op, vec![n, c, h, h], vec![o, c, 3, 3], DType::Fixed);
    let out =
        compare_on(&g, &ins(real(&[n, c, h, h], &x), Some(real(&[o, c, 3, 3], &w))), |_, _| ULP, Network::default())
            .unwrap();
    let blocks = out.report.nodes.iter().filter(|r| r.op == "conv2d").count();
    assert_eq!(blocks, 2, "40 channels of 182² outputs: two blocks of at most 2^20");
}

#[test]
fn onehot_beyond_the_key_domain_is_refused_by_name() {
    let depth = (1 << 20) + 1;
    let g = one(Op::OneHot { depth }, vec![1], DType::Int);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let err = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap_err();
    assert!(
        err.to_string().contains(&format!("fss2pc computes onehot with up to 1048576 classes, not {depth}")),
        "{err}"
    );
}

/// Per-element bound of layernorm over lanes of `len` (last axis): `Δc = 1.5 + |mean|/256` ulp
/// (one `mean`), `Δvar = 2·max|c|·Δc + (1.5 + var/256)` ulp, then
/// `|Δy| ≤ 2·(Δc·inv + |y|·(2^-20 + Δvar/(2·(var + ε))) + |c| ulp + 2 ulp)` (`|c|` ulp: rsqrt's
/// output is rounded to one ulp), times `|γ|`, plus 2 ulp. An `ε` below one ulp is computed as
/// `ε' = 1` ulp: the bound takes `ε'` and adds `|c|·|γ|·(1/√(var + ε) − 1/√(var + ε'))`.
fn layernorm_bounds(x: &[f64], len: usize, eps: f64, gamma: f64) -> Vec<f64> {
    let computed = if (eps * 65536.0).round() < 1.0 { ULP } else { eps };
    let mut out = vec![];
    for lane in x.chunks(len) {
        let n = lane.len() as f64;
        let mean = lane.iter().sum::<f64>() / n;
        let var = lane.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let cmax = lane.iter().map(|v| (v - mean).abs()).fold(0.0, f64::max);
        let dc = (1.5 + mean.abs() / 256.0) * ULP;
        let dvar = 2.0 * cmax * dc + (1.5 + var / 256.0) * ULP;
        let inv = 1.0 / (var + computed).sqrt();
        for v in lane {
            let y = (v - mean) * inv;
            let c = (v - mean).abs();
            let b = 2.0 * (dc * inv + y.abs() * (ROOT_REL + dvar / (2.0 * (var + computed))) + (c + 2.0) * ULP);
            let change = if c == 0.0 { 0.0 } else { c * (1.0 / (var + eps).sqrt() - inv) };
            out.push((b + change) * gamma.abs() + 2.0 * ULP);
        }
    }
    out
}

#[test]
fn layernorm_with_affine_inputs() {
    let x: Vec<f64> = (0..12).map(|i| ((i * 37) % 11) as f64 * 1.7 - 6.0).collect();
    let gamma = [0.5, -2.0, 1.25, 3.0];
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(3), Dim::Fixed(4)])
        .input("b", "bob", DType::Fixed, vec![Dim::Fixed(4)])
        .constant("beta", DType::Fixed, vec![4], vec![0.0, 1.0, -1.5, 2.25])
        .node("y", Op::Layernorm { axis: 1, epsilon: 1e-3 }, ["a", "b", "beta"])
        .output("y", ["alice", "bob"]);
    let bounds = layernorm_bounds(&x, 4, 1e-3, 3.0);
    compare(&g, &ins(real(&[3, 4], &x), Some(real(&[4], &gamma))), |i, _| bounds[i]).unwrap();
}

#[test]
fn softmax_of_int_and_wide_lanes() {
    let iv = InputValue::Int { shape: vec![2, 3], values: vec![0, 5, -3, 100, 100, -100] };
    compare(&one(Op::Softmax { axis: 1 }, vec![2, 3], DType::Int), &ins(iv, None), |_, r| (7.0 + 12.3 * r) * ULP)
        .unwrap();
}

/// `--threads` (the session's tuning) changes how fast, never what: the same answers and the
/// same bytes on one thread as on three, for comparisons, products and lookups.
#[test]
fn the_thread_count_changes_no_answer() {
    let y = std::fs::read_to_string(root().join("graphs/hospital_stats.yaml")).unwrap();
    let north: Vec<f64> = (0..5000).map(|i| 100.0 + (i % 91) as f64).collect();
    let south: Vec<f64> = (0..3000).map(|i| 110.0 + (i % 53) as f64).collect();
    let inputs = [("north_bp", InputValue::from(north)), ("south_bp", InputValue::from(south))];
    let go = |threads: usize| {
        let tuning = mpcflow_sdk::protocol::Tuning { threads, ..Default::default() };
        let cfg = SessionConfig { tuning, all_under_protocol: true, ..Default::default() };
        let s = Session::from_yaml(&y, "hospital.yaml", mpcflow::builtins()).unwrap().with_config(cfg);
        rt().block_on(s.run(inputs.clone())).unwrap()
    };
    let (one, three) = (go(1), go(3));
    for name in ["n_patients", "mean_bp", "var_bp", "n_high"] {
        assert_eq!(one.values(name), three.values(name), "{name}");
    }
    let bytes = |o: &RunOutput| o.report.nodes.iter().map(|n| n.dealer_bytes.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&one), bytes(&three));
}

/// `x > 140` costs what `x > y` costs: the difference with a public operand is local, so the
/// comparison is one DCF (or half-tree key) on `x` alone, on every network profile.
#[test]
fn comparisons_with_a_public_operand_cost_the_key_on_x_alone() {
    for network in Network::ALL {
        let cost = |g: GraphSpec| {
            let cfg = SessionConfig {
                all_under_protocol: true,
                protocol: Some("fss2pc".into()),
                network,
                ..Default::default()
            };
            let p = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
            p.nodes.iter().find(|n| n.desc.name == "y").unwrap().cost.clone()
        };
        for n in [1, 1000, 30_000] {
            let public = GraphSpec::new("t", ["alice", "bob"])
                .input("a", "alice", DType::Fixed, vec![Dim::Fixed(n)])
                .constant("t", DType::Fixed, vec![], vec![140.0])
                .node("y", Op::Gt, ["a", "t"])
                .output("y", ["alice"]);
            let (with_public, with_secret) = (cost(public), cost(two(Op::Gt, vec![n], vec![n], DType::Fixed)));
            assert_eq!(with_public, with_secret, "{network} n = {n}");
            // No more than the ReLU on x, whose key also carries the select.
            let relu = cost(one(Op::Relu, vec![n], DType::Fixed));
            assert!(with_public.dealer_bytes.iter().zip(&relu.dealer_bytes).all(|(c, r)| c <= r), "{network} n = {n}");
        }
    }
}

/// `n` values within `[lo, hi]` on the fixed-point grid, the two ends included.
fn within(lo: f64, hi: f64, n: usize, seed: u64) -> Vec<f64> {
    let (lo, hi) = ((lo * 65536.0).ceil() / 65536.0, (hi * 65536.0).floor() / 65536.0);
    let mut x = seed | 1;
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            ((lo + u * (hi - lo)) * 65536.0).round().clamp(lo * 65536.0, hi * 65536.0) / 65536.0
        })
        .collect();
    v[0] = lo;
    v[n - 1] = hi;
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 10, ..ProptestConfig::default() })]

    /// Declared input ranges narrow the comparisons they feed, through sums, products, scales
    /// and differences, and the results stay exact: random ranges, values within them (ends
    /// included), both forms; `ref` enforces every narrowed width, so an unsound range rule
    /// would fail here.
    #[test]
    fn declared_ranges_narrow_comparisons_and_stay_exact(
        lo_a in -3e3f64..0.0, span_a in 0.5f64..6e3, lo_b in -3e3f64..10.0, span_b in 0.5f64..6e3,
        seed in any::<u64>(), n in prop_oneof![Just(8usize), Just(600)],
    ) {
        let (hi_a, hi_b) = (lo_a + span_a, lo_b + span_b);
        let (a, b) = (within(lo_a, hi_a, n, seed), within(lo_b, hi_b, n, seed.rotate_left(17)));
        let ab = ins(real(&[n], &a), Some(real(&[n], &b)));
        let graphs = [
            ("gt", two(Op::Gt, vec![n], vec![n], DType::Fixed)),
            ("max", two(Op::Max { axis: None }, vec![n], vec![n], DType::Fixed)),
            ("sum-gt", GraphSpec::new("t", ["alice", "bob"])
                .input("a", "alice", DType::Fixed, vec![Dim::Fixed(n)])
                .input("b", "bob", DType::Fixed, vec![Dim::Fixed(n)])
                .node("s", Op::Add, ["a", "b"])
                .node("y", Op::Le, ["s", "b"])
                .output("y", ["alice", "bob"])),
            ("product-relu", GraphSpec::new("t", ["alice", "bob"])
                .input("a", "alice", DType::Fixed, vec![Dim::Fixed(n)])
                .input("b", "bob", DType::Fixed, vec![Dim::Fixed(n)])
                .constant("t", DType::Fixed, vec![], vec![17.25])
                .node("p", Op::Mul, ["a", "b"])
                .node("q", Op::Scale { factor: 0.37 }, ["p"])
                .node("d", Op::Sub, ["q", "t"])
                .node("y", Op::Relu, ["d"])
                .output("y", ["alice", "bob"])),
        ];
        for network in [Network::Local, Network::Lan] {
            for (what, g) in &graphs {
                let g = g.clone().input_range("a", lo_a, hi_a).input_range("b", lo_b, hi_b);
                compare_on(&g, &ab, |_, _| 0.0, network)?;
                let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), network, ..Default::default() };
                let plan = Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
                let widths: Vec<u32> = plan.nodes.iter()
                    .filter(|n| matches!(n.desc.kind.label().as_str(), "gt" | "ge" | "lt" | "le" | "relu"))
                    .map(|n| n.desc.fixed_point.compare_bits)
                    .collect();
                prop_assert!(!widths.is_empty() && widths.iter().all(|&w| w < 64), "{}: widths {:?}", what, widths);
            }
        }
    }
}

/// A node's declared range narrows the comparisons it feeds (here where no rule could bound it:
/// a product of undeclared inputs), fss2pc computes them exactly within it, and `ref` stops a
/// run whose node leaves it, naming the node and the value.
#[test]
fn a_declared_node_range_narrows_what_it_feeds_and_ref_enforces_it() {
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(4)])
        .input("b", "bob", DType::Fixed, vec![Dim::Fixed(4)])
        .node("p", Op::Mul, ["a", "b"])
        .node("y", Op::Relu, ["p"])
        .output("y", ["alice"]);
    let relu_bits = |g: &GraphSpec| {
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
        let plan =
            Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        plan.nodes.iter().find(|n| n.desc.name == "y").map(|n| n.desc.fixed_point.compare_bits).unwrap()
    };
    assert_eq!(relu_bits(&g), 64, "no declared range: the graph's width");
    let ranged = g.clone().node_range("p", -100.0, 100.0);
    assert_eq!(relu_bits(&ranged), 25, "100·2^16 < 2^23: 23 + 2 bits");
    let inputs =
        |b: &[f64]| vec![("a".to_string(), real(&[4], &[1.5, -2.0, 9.0, 0.25])), ("b".to_string(), real(&[4], b))];
    for protocol in ["ref", "fss2pc"] {
        let out = run(&ranged, protocol, &inputs(&[2.0, 3.0, -11.0, 4.0]));
        let y = out.outputs.iter().find(|o| o.name == "y").unwrap();
        let fp = FixedPoint::default();
        let got: Vec<f64> = y.tensor.data.iter().map(|w| fp.decode(*w)).collect();
        assert_eq!(got, vec![3.0, 0.0, 0.0, 1.0], "{protocol}");
    }
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("ref".into()), ..Default::default() };
    let s = Session::from_graph(ranged, mpcflow::builtins()).with_config(cfg);
    let e = rt().block_on(s.run(inputs(&[2.0, 3.0, 12.0, 4.0]))).unwrap_err().to_string();
    assert!(e.contains("node `p` (mul): value 108 (element 2) is outside the declared range [-100, 100]"), "{e}");
}

#[test]
fn an_input_outside_its_declared_range_is_refused_by_its_owner() {
    let g = one(Op::Relu, vec![3], DType::Fixed).input_range("a", -1.0, 1.0);
    for protocol in ["ref", "fss2pc"] {
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some(protocol.into()), ..Default::default() };
        let s = Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg);
        let e = rt().block_on(s.run(ins(real(&[3], &[0.5, -1.0, 1.5]), None))).unwrap_err().to_string();
        assert!(
            e.contains("input `a`: value 1.5 (element 2) is outside the declared range [-1, 1]"),
            "{protocol}: {e}"
        );
    }
}

#[test]
fn plan_shows_the_widths_that_declared_ranges_allow() {
    let plan = |g: GraphSpec| {
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
        let p = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        p.nodes
            .iter()
            .find(|n| n.desc.name == "y")
            .map(|n| (n.desc.fixed_point.compare_bits, n.cost.form.clone()))
            .unwrap()
    };
    let threshold = |range: Option<(f64, f64)>| {
        let g = GraphSpec::new("t", ["alice", "bob"])
            .input("a", "alice", DType::Fixed, vec![Dim::Fixed(1000)])
            .constant("t", DType::Fixed, vec![], vec![140.0])
            .node("y", Op::Gt, ["a", "t"])
            .output("y", ["alice"]);
        match range {
            Some((lo, hi)) => g.input_range("a", lo, hi),
            None => g,
        }
    };
    // [0, 300] against 140 at 16 fractional bits: differences below 160·2^16 < 2^24, so 24 bits
    // of magnitude, one of sign, one to spare.
    let (bits, form) = plan(threshold(Some((0.0, 300.0))));
    assert_eq!(bits, 26);
    assert!(form.ends_with(", 26 bits"), "{form}");
    assert_eq!(plan(threshold(None)).0, 64, "no declared range: the graph's width");
    assert_eq!(plan(threshold(Some((140.0, 140.0)))).0, 2, "a single value: the narrowest width");
    // Ranges through a product and a sum: [-3, 3]·[-3, 3] summed over 100 → |s| ≤ 900 (+ rounding).
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(100)])
        .input("b", "bob", DType::Fixed, vec![Dim::Fixed(100)])
        .node("p", Op::Mul, ["a", "b"])
        .node("s", Op::Sum { axes: vec![], keepdims: false }, ["p"])
        .node("y", Op::Relu, ["s"])
        .output("y", ["alice"])
        .input_range("a", -3.0, 3.0)
        .input_range("b", -3.0, 3.0);
    assert_eq!(plan(g).0, 28, "900·2^16 < 2^26: 26 + 2 bits");
}

/// The range rules of means and average pooling: an int input's mean is fixed point, and a
/// padded window averages zeros in; `ref` enforces the narrowed widths, so a rule that is too
/// narrow would refuse these valid runs.
#[test]
fn ranges_through_means_of_ints_and_padded_pools() {
    let mean = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Int, vec![Dim::Fixed(4)])
        .node("m", Op::Mean { axes: vec![], keepdims: false }, ["a"])
        .node("y", Op::Relu, ["m"])
        .output("y", ["alice"])
        .input_range("a", 0.0, 300.0);
    let iv = InputValue::Int { shape: vec![4], values: vec![1, 1, 1, 300] };
    compare(&mean, &ins(iv, None), |_, r| (r.abs() / 256.0 + 1.5) * ULP).unwrap();
    let pool = Pool { kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(3)])
        .constant("t", DType::Fixed, vec![], vec![16.0])
        .node("p", Op::Avgpool(pool), ["a"])
        .node("y", Op::Gt, ["t", "p"])
        .output("y", ["alice"])
        .input_range("a", 16.0, 16.0);
    compare(&g, &ins(real(&[1, 1, 3, 3], &[16.0; 9]), None), |_, _| 0.0).unwrap();
}

#[test]
fn a_range_declared_through_the_library_is_checked_like_one_in_a_file() {
    let g = one(Op::Relu, vec![3], DType::Fixed).input_range("a", 5.0, -5.0);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("ref".into()), ..Default::default() };
    let e = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap_err();
    assert!(e.to_string().contains("`range` [5, -5] is empty: lo must not exceed hi"), "{e}");
}

/// The lookups at other precisions, where the interpolation's absolute error `E` stays what it
/// is and the ulp changes, and (at `f = 24`) the products' range makes the gate drop the
/// remainder's low `s` bits: within `E + max|f'|·2^(s−f) + 2` ulp (see `gates::lut`).
#[test]
fn lookups_within_their_bounds_at_other_precisions() {
    let x: Vec<f64> = (0..601).map(|i| -18.0 + i as f64 * 0.06 + 0.000_37).collect();
    let n = x.len();
    let exp_x: Vec<f64> = x.iter().map(|v| v.min(8.0)).collect();
    // (op, inputs, E at |y|, max|f'| at |y|, s at f = 24: t = f − p, q from the half range).
    type Bound = fn(f64) -> f64;
    let cases: [(Op, &Vec<f64>, Bound, Bound, u32); 4] = [
        (Op::Exp, &exp_x, |y| 1.8e-5 * y, |y| y, 8),
        (Op::Sigmoid, &x, |_| 2.0e-6, |_| 0.25, 3),
        (Op::Tanh, &x, |_| 3.9e-6, |_| 1.0, 2),
        (Op::Gelu, &x, |_| 1.6e-6, |_| 0.5, 2),
    ];
    for f in [5u32, 12, 24] {
        let ulp = 2f64.powi(-(f as i32));
        for (op, xs, e, slope, s24) in &cases {
            let s = if f == 24 { *s24 } else { 0 };
            let mut g = one(op.clone(), vec![n], DType::Fixed);
            g.fixed_point = FixedPoint::new(f);
            let bound = |r: f64| e(r.abs()) + slope(r.abs()) * 2f64.powi(s as i32 - f as i32) + 2.0 * ulp;
            // Both borrow forms and both table reads (at f = 24 the split has two
            // truncations): a table key and DCF borrows on `wan`, one-hot shares (a round
            // more) and opened borrows (two more) on `local`, where at f = 5 the truncations
            // are so short that the DCF stays.
            for (network, rounds) in [(Network::Wan, 5), (Network::Local, 8)] {
                let out = compare_on(&g, &ins(real(&[n], xs), None), |_, r| bound(r), network)
                    .unwrap_or_else(|e| panic!("{op:?} at f = {f} on {network:?}: {e}"));
                let got = rounds_of(&out, "y");
                let dcf_kept = f == 5 && network == Network::Local && got == 6;
                assert!(got == rounds || dcf_kept, "{op:?} at f = {f} on {network:?}: {got} rounds");
            }
        }
    }
}

/// `plan` shows each lookup's table (points, domain, step) and how its truncations learn their
/// borrows, which the network profile decides.
#[test]
fn plan_shows_each_lookups_table_and_truncations() {
    let form = |op: Op, network: Network| {
        let cfg =
            SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), network, ..Default::default() };
        let g = one(op, vec![4000], DType::Fixed);
        let p = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        p.nodes.iter().find(|n| n.desc.name == "y").map(|n| n.cost.form.clone()).unwrap()
    };
    let exp = form(Op::Exp, Network::Wan);
    assert!(exp.starts_with("table of 256 quadratic pieces on [-16, 8], step 2^-3"), "{exp}");
    assert!(exp.ends_with("truncations by DCF"), "{exp}");
    let gelu = form(Op::Gelu, Network::Local);
    assert!(gelu.starts_with("table of 128 quadratic pieces on |x| in [0, 7.9375], step 2^-4"), "{gelu}");
    assert!(gelu.contains("|x| clipped over 64 bits"), "{gelu}");
    assert!(gelu.ends_with("truncations open their borrows"), "{gelu}");
    let sigmoid = form(Op::Sigmoid, Network::Lan);
    assert!(sigmoid.starts_with("table of 128 quadratic pieces on |x| in [0, 15.875], step 2^-3"), "{sigmoid}");
    // Where a round costs 80 ms a few thousand elements keep the table key; where it costs
    // microseconds one-hot shares win.
    assert!(exp.contains("read by a table key"), "{exp}");
    assert!(gelu.contains("read by one-hot shares in a round more"), "{gelu}");
}

/// A lookup of a single element (one key, one thread, a partial leaf group).
#[test]
fn a_lookup_of_one_element() {
    for (op, x, bound) in [(Op::Exp, -3.3, (1.2 * (-3.3f64).exp() + 2.0) * ULP), (Op::Gelu, 0.5, 2.0 * ULP)] {
        compare(&one(op, vec![1], DType::Fixed), &ins(real(&[1], &[x]), None), |_, _| bound).unwrap();
    }
}

/// A dense sweep of each lookup over and past its table's domain, every element within the
/// bound the lookup gate states (see `gates::lut`): 2 ulp for sigmoid, tanh and gelu, and
/// `1.2·|y| + 2` ulp for exp (a relative error of `1.8·10^-5` from the quadratic pieces).
#[test]
fn lookups_within_their_stated_bounds_on_a_dense_sweep() {
    let x: Vec<f64> = (0..4001).map(|i| -20.0 + i as f64 * 0.01 + 0.000_37).collect();
    let n = x.len();
    let exp_x: Vec<f64> = x.iter().map(|v| v.min(8.0)).collect();
    for (op, xs) in [(Op::Exp, &exp_x), (Op::Sigmoid, &x), (Op::Tanh, &x), (Op::Gelu, &x)] {
        let bound = |r: f64| if op == Op::Exp { (1.2 * r.abs() + 2.0) * ULP } else { 2.0 * ULP };
        // Both ways of learning the truncations' borrows and both ways of reading the table:
        // by DCF and a table key (five rounds) where latency is dear; opened as bits (two
        // rounds more) and by one-hot shares (one more) on `local`; and on `local` at 100
        // elements by one-hot shares with DCF borrows (six).
        for (network, rounds, count) in [(Network::Wan, 5, n), (Network::Local, 8, n), (Network::Local, 6, 100)] {
            let g = one(op.clone(), vec![count], DType::Fixed);
            // Spread over the whole sweep.
            let spread: Vec<f64> = xs.iter().step_by(n / count).copied().collect();
            let some = ins(real(&[count], &spread[..count]), None);
            let out = compare_on(&g, &some, |_, r| bound(r), network).unwrap();
            assert_eq!(rounds_of(&out, "y"), rounds, "{op:?} on {network:?} at {count} elements");
        }
    }
}

/// The two ways of reading a lookup's table give the same values, bit for bit (the arithmetic
/// is exact in the ring either way): at 15000 elements `wan` keeps the table key but opens the
/// truncations' borrows (seven rounds), `local` reads one-hot shares (eight).
#[test]
fn both_table_reads_give_the_same_values() {
    let n = 15_000;
    let x: Vec<f64> = (0..n).map(|i| -18.0 + i as f64 * 36.0 / n as f64 + 0.000_37).collect();
    let exp_x: Vec<f64> = x.iter().map(|v| v.min(8.0)).collect();
    for (op, xs) in [(Op::Exp, &exp_x), (Op::Sigmoid, &x)] {
        let bound = |r: f64| if op == Op::Exp { (1.2 * r.abs() + 2.0) * ULP } else { 2.0 * ULP };
        let g = one(op.clone(), vec![n], DType::Fixed);
        let mut values = Vec::new();
        for (network, rounds) in [(Network::Wan, 7), (Network::Local, 8)] {
            let out = compare_on(&g, &ins(real(&[n], xs), None), |_, r| bound(r), network).unwrap();
            assert_eq!(rounds_of(&out, "y"), rounds, "{op:?} on {network:?}");
            values.push(out.values("y").unwrap());
        }
        assert_eq!(values[0], values[1], "{op:?}: a table key and one-hot shares");
    }
}

/// Edges beyond every word need no comparison (every element counts, or none), and the counts
/// stay exact; a sum of int inputs beyond 2^62 still falls below an edge of 1e19.
#[test]
fn histogram_edges_beyond_every_word() {
    let x = [-300.0, -1.0, 0.0, 5.0, 120.0];
    for edges in [vec![-1e300, 0.0, 1e300], vec![1e300, 2e300], vec![-2e300, -1e300], vec![-1e300, 1e300]] {
        let g = one(Op::Histogram { edges: edges.clone() }, vec![5], DType::Fixed);
        compare(&g, &ins(real(&[5], &x), None), |_, _| 0.0).unwrap();
    }
    let big = 3_000_000_000_000_000_000i64;
    let g = two(Op::Add, vec![2], vec![2], DType::Int)
        .node("h", Op::Histogram { edges: vec![0.0, 1e19] }, ["y"])
        .output("h", ["alice"]);
    let ints = |v: [i64; 2]| InputValue::Int { shape: vec![2], values: v.to_vec() };
    for protocol in ["ref", "fss2pc"] {
        let out = run(&g, protocol, &ins(ints([big, 1]), Some(ints([big, 2]))));
        assert_eq!(out.values("h"), Some(vec![2.0]), "{protocol}");
    }
}

/// A histogram of many elements compares in chunks (its material streams) and stays exact.
#[test]
fn a_large_histogram_is_chunked_and_exact() {
    let n = 10_000;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 2400) as f64 / 10.0 - 20.0).collect();
    let g = one(Op::Histogram { edges: vec![0.0, 20.0, 50.0, 80.0, 120.0, 160.0, 200.0] }, vec![n], DType::Fixed);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let plan = Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
    let chunks = plan.nodes.iter().filter(|n| n.desc.kind.label() == "ge").count();
    assert_eq!(chunks, n.div_ceil(32768 / 7), "one comparison node per chunk");
    compare(&g, &ins(real(&[n], &x), None), |_, _| 0.0).unwrap();
}

/// exp's clip compares with the table's lower end only: its contract holds the input at most 8,
/// which `ref` enforces, and fss2pc still gives `exp(8)` for inputs up to the table's end at 16.
/// The one comparison costs less material and fewer opened bits than sigmoid's two.
#[test]
fn exp_clips_from_below_only() {
    let x: Vec<f64> = (0..1500).map(|i| -30.0 + i as f64 * 0.03 + 0.000_37).collect();
    let n = x.len();
    let plan_of = |op: Op| {
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
        let g = one(op, vec![n], DType::Fixed);
        let p = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        p.nodes.into_iter().find(|n| n.desc.name == "y").unwrap().cost
    };
    let (exp, sigmoid) = (plan_of(Op::Exp), plan_of(Op::Sigmoid));
    assert!(exp.form.contains("clip from below over 64 bits"), "{}", exp.form);
    assert!(exp.online_bytes[0] < sigmoid.online_bytes[0], "one comparison bit instead of two");
    assert!(exp.dealer_bytes[1] < sigmoid.dealer_bytes[1], "one comparison's masks instead of two");

    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
    let g = one(Op::Exp, vec![n], DType::Fixed);
    let out = rt()
        .block_on(Session::from_graph(g, mpcflow::builtins()).with_config(cfg).run([("a", real(&[n], &x))]))
        .unwrap();
    for (xi, yi) in x.iter().zip(out.values("y").unwrap()) {
        // As `ref` computes it: on the input as encoded.
        let want = ((xi / ULP).round() * ULP).clamp(-16.0, 8.0).exp();
        let bound = if *xi < -16.0 { 2.0 * ULP } else { (1.2 * want + 2.0) * ULP };
        assert!((yi - want).abs() <= bound, "exp({xi}) = {yi}, want {want}");
    }
}

/// An int lookup's width counts its input in fixed-point words, as fss2pc makes it fixed first:
/// under `compare_bits: 24` (a 25-bit clip) `ref` refuses an input of 128 (`2^23` words) and
/// fss2pc computes every input below it within the bound; a declared int range narrows both
/// plans alike.
#[test]
fn int_lookups_count_their_width_in_fixed_point_words() {
    let xs: Vec<i64> = vec![-127, -100, -17, -1, 0, 1, 3, 9, 100, 127];
    let n = xs.len();
    let mut g = one(Op::Sigmoid, vec![n], DType::Int);
    g.fixed_point = FixedPoint::default().with_compare_bits(24);
    let ints = |v: &[i64]| ins(InputValue::Int { shape: vec![v.len()], values: v.to_vec() }, None);
    compare(&g, &ints(&xs), |_, _| 2.0 * ULP).unwrap();
    let mut past = xs.clone();
    past[4] = 128;
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("ref".into()), ..Default::default() };
    let e = rt().block_on(Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg).run(ints(&past)));
    let e = e.unwrap_err().to_string();
    assert!(e.contains("lookup input 128 is beyond the reach of its clip's comparisons over 25 bits"), "{e}");
    // [-100, 100] as ints is 100·2^16 < 2^23 fixed words: 25 bits in both plans.
    let ranged = one(Op::Sigmoid, vec![n], DType::Int).input_range("a", -100.0, 100.0);
    for protocol in ["ref", "fss2pc"] {
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some(protocol.into()), ..Default::default() };
        let plan =
            Session::from_graph(ranged.clone(), mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        let bits: Vec<u32> = plan
            .nodes
            .iter()
            .filter(|n| n.desc.kind.label() == "sigmoid")
            .map(|n| n.desc.fixed_point.compare_bits)
            .collect();
        assert_eq!(bits, vec![25], "{protocol}");
    }
    let inside: Vec<i64> = xs.iter().map(|x| x.clamp(&-100, &100)).copied().collect();
    compare(&ranged, &ints(&inside), |_, _| 2.0 * ULP).unwrap();
}

/// Where a declared range keeps a lookup's input inside its table (within the reach of the
/// narrowed width), the gate skips the clip: two rounds fewer, no comparison material, and the
/// results within the stated bounds on a sweep of the range; gelu keeps its `relu(x)`.
#[test]
fn a_lookup_inside_its_table_needs_no_clip() {
    for (op, half) in [(Op::Exp, 7.0), (Op::Sigmoid, 7.0), (Op::Tanh, 3.9), (Op::Gelu, 3.9)] {
        let x: Vec<f64> = (0..801).map(|i| -half + i as f64 * half / 400.0).collect();
        let n = x.len();
        let g = one(op.clone(), vec![n], DType::Fixed).input_range("a", -half, half);
        let bound = |r: f64| if op == Op::Exp { (1.2 * r.abs() + 2.0) * ULP } else { 2.0 * ULP };
        let clipped = op == Op::Gelu;
        for (network, rounds) in [(Network::Wan, 5), (Network::Local, 8)] {
            let cfg = SessionConfig {
                all_under_protocol: true,
                protocol: Some("fss2pc".into()),
                network,
                ..Default::default()
            };
            let plan =
                Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
            let y = plan.nodes.iter().find(|n| n.desc.name == "y").unwrap();
            assert_eq!(y.cost.form.contains("no clip"), !clipped, "{op:?}: {}", y.cost.form);
            let out = compare_on(&g, &ins(real(&[n], &x), None), |_, r| bound(r), network).unwrap();
            assert_eq!(rounds_of(&out, "y"), rounds - 2 * u32::from(!clipped), "{op:?} on {network:?}");
        }
    }
}

/// A declared range narrows a lookup's clip (its comparisons with the table's ends) to the
/// width the input's magnitude needs, and the results stay within the stated bounds on a sweep
/// of the whole declared range, its ends included.
#[test]
fn declared_ranges_narrow_the_lookups_clip_within_their_bounds() {
    let x: Vec<f64> = (0..1400).map(|i| -20.0 + i as f64 * 0.02 + 0.000_37).chain([-20.0, 8.0]).collect();
    let n = x.len();
    for op in [Op::Exp, Op::Sigmoid, Op::Tanh, Op::Gelu] {
        let g = one(op.clone(), vec![n], DType::Fixed).input_range("a", -20.0, 8.0);
        let cfg = SessionConfig { all_under_protocol: true, protocol: Some("fss2pc".into()), ..Default::default() };
        let plan =
            Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg).plan(Default::default()).unwrap();
        let y = plan.nodes.iter().find(|n| n.desc.name == "y").unwrap();
        // |x| ≤ 20·2^16 < 2^21: 21 + 2 bits.
        assert_eq!(y.desc.fixed_point.compare_bits, 23, "{op:?}");
        let clip = if op == Op::Exp { "clip from below over 24 bits" } else { "|x| clipped over 24 bits" };
        assert!(y.cost.form.contains(clip), "{}", y.cost.form);
        let bound = |r: f64| if op == Op::Exp { (1.2 * r.abs() + 2.0) * ULP } else { 2.0 * ULP };
        for network in [Network::Wan, Network::Local] {
            compare_on(&g, &ins(real(&[n], &x), None), |_, r| bound(r), network).unwrap();
        }
    }
}
