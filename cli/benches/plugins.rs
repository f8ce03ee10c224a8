//! What a plugin costs against the same code built in, on a 1,000,000-element tensor.
//!
//! - `transform_1M`: the example `normalize` transform run by the WASM host against the same
//!   Rust code called directly (it is the example crate, linked as a library).
//! - `lower`: one lowering call of a secure operator: `leaky_relu` through the native library
//!   and `clip` through WASM, each against the same code called directly. This happens once
//!   per node at plan time, never per element.
//! - `leaky_relu_1M_ref`: a whole run (plan, deal, evaluate) of the example pipeline on 1M
//!   elements under `ref`, with the operator loaded from the native library and built in.
//!
//! The plugins are built first by `scripts/build-example-plugins.sh`, with the commands of the
//! examples' READMEs (into `target/plugins`).
//! Run: `cargo bench -p mpcflow --bench plugins`.

use criterion::{Criterion, criterion_group, criterion_main};
use mpcflow::runtime::plugin_spec::PluginSource;
use mpcflow::runtime::{InputValue, Registry, Session, SessionConfig};
use mpcflow_sdk::op::{AttrValue, Attrs};
use mpcflow_sdk::operator::{Operator, PlainTensor};
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, FixedPoint};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const N: usize = 1_000_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

fn build_plugins() -> (PathBuf, PathBuf) {
    let dir = root().join("target/plugins");
    let script = root().join("scripts/build-example-plugins.sh");
    let ok = Command::new(script).arg("--examples-only").status().is_ok_and(|s| s.success());
    assert!(ok, "scripts/build-example-plugins.sh failed");
    (
        dir.join("release/libmpcflow_example_leaky_relu.so"),
        dir.join("wasm32-unknown-unknown/release/mpcflow_example_normalize.wasm"),
    )
}

fn loaded(source: PluginSource) -> Registry {
    let mut r = mpcflow::builtins();
    mpcflow::plugin_host::load(&source, &mut r).expect("plugin loads");
    r
}

fn attrs(pairs: &[(&str, f64)]) -> Attrs {
    pairs.iter().map(|(k, v)| (k.to_string(), AttrValue::Float(*v))).collect()
}

fn bench(c: &mut Criterion) {
    let (native, wasm) = build_plugins();
    let native_reg = loaded(PluginSource::from_path(native));
    let wasm_reg = loaded(PluginSource::from_path(wasm));

    let values: Vec<f64> = (0..N).map(|i| 60.0 + (i % 200) as f64).collect();
    let plain = PlainTensor { shape: vec![N], values };
    let norm = attrs(&[("mean", 120.0), ("std", 15.0), ("clip", 6.0)]);
    let builtin_normalize: Arc<dyn Operator> = Arc::new(mpcflow_example_normalize::Normalize);
    let wasm_normalize = wasm_reg.operator("normalize").expect("normalize");
    let mut g = c.benchmark_group("transform_1M");
    g.sample_size(20);
    g.bench_function("builtin", |b| b.iter(|| builtin_normalize.transform(&norm, plain.clone()).unwrap()));
    g.bench_function("wasm", |b| b.iter(|| wasm_normalize.transform(&norm, plain.clone()).unwrap()));
    g.finish();

    let info = [TensorInfo { shape: vec![N], dtype: DType::Fixed, vis: Visibility::Secret }];
    let fp = FixedPoint::default();
    let mut g = c.benchmark_group("lower");
    let leaky = attrs(&[("alpha", 0.1)]);
    let builtin_leaky: Arc<dyn Operator> = Arc::new(mpcflow_example_leaky_relu::LeakyRelu);
    let native_leaky = native_reg.operator("leaky_relu").expect("leaky_relu");
    g.bench_function("leaky_relu/builtin", |b| b.iter(|| builtin_leaky.lower(&leaky, &info, fp).unwrap()));
    g.bench_function("leaky_relu/native", |b| b.iter(|| native_leaky.lower(&leaky, &info, fp).unwrap()));
    let clip = attrs(&[("lo", -3.0), ("hi", 3.0)]);
    let builtin_clip: Arc<dyn Operator> = Arc::new(mpcflow_example_normalize::Clip);
    let wasm_clip = wasm_reg.operator("clip").expect("clip");
    g.bench_function("clip/builtin", |b| b.iter(|| builtin_clip.lower(&clip, &info, fp).unwrap()));
    g.bench_function("clip/wasm", |b| b.iter(|| wasm_clip.lower(&clip, &info, fp).unwrap()));
    g.finish();

    let file = root().join("examples/native-leaky-relu/pipeline.yaml");
    let pipeline = mpcflow::runtime::pipeline::Pipeline::from_path(&file).expect("pipeline");
    let mut builtin_reg = mpcflow::builtins();
    builtin_reg.add_operator(builtin_leaky.clone());
    let a: Vec<f64> = (0..N).map(|i| (i as f64 - N as f64 / 2.0) / 1000.0).collect();
    let b_in = vec![0.5; N];
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut g = c.benchmark_group("leaky_relu_1M_ref");
    g.sample_size(10);
    for (name, reg) in [("builtin", builtin_reg), ("native", native_reg)] {
        let cfg = SessionConfig { protocol: Some("ref".into()), ..Default::default() };
        let s = Session::from_pipeline(pipeline.clone(), reg).unwrap().with_config(cfg);
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(s.run([("a", InputValue::from(a.clone())), ("b", InputValue::from(b_in.clone()))])).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
