//! The pipeline file format as serde structs, every value wrapped in `Spanned` so that later
//! errors can point at the file. Unknown fields are rejected.

pub use mpcflow_sdk::config::Entries;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with its location.
pub type SStr = Spanned<String>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub version: Spanned<u32>,
    pub name: Option<SStr>,
    pub parties: Spanned<Vec<SStr>>,
    #[serde(default)]
    pub owners: Vec<SStr>,
    pub protocol: Option<SStr>,
    pub kernel: Option<SStr>,
    pub fixed_point: Option<Spanned<RawFixedPoint>>,
    #[serde(default)]
    pub constants: Entries<SStr, Spanned<RawConstant>>,
    #[serde(default)]
    pub inputs: Entries<SStr, Spanned<RawInput>>,
    #[serde(default)]
    pub nodes: Entries<SStr, Spanned<Entries<SStr, Spanned<RawValue>>>>,
    #[serde(default)]
    pub outputs: Entries<SStr, Spanned<RawOutput>>,
    #[serde(default)]
    pub plugins: Vec<Spanned<RawPlugin>>,
    #[serde(default)]
    pub models: Entries<SStr, Spanned<RawModel>>,
}

/// `cnn: { import: onnx, path: digits.onnx, owner: clinic }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub import: SStr,
    pub path: SStr,
    pub owner: SStr,
}

/// `- { native: PATH }` or `- { wasm: PATH, fuel: N, memory_mib: N }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub native: Option<SStr>,
    pub wasm: Option<SStr>,
    pub fuel: Option<Spanned<u64>>,
    pub memory_mib: Option<Spanned<u64>>,
}

/// `fixed_point: { frac_bits: 16 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFixedPoint {
    pub frac_bits: Spanned<u32>,
    pub compare_bits: Option<Spanned<u32>>,
}

/// `name: { value: 1.5, dtype: fixed }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConstant {
    pub value: Spanned<RawValue>,
    pub dtype: Option<SStr>,
}

/// `name: { owner: alice, dtype: int, shape: [n, 3] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub owner: SStr,
    pub dtype: SStr,
    #[serde(default)]
    pub shape: Vec<Spanned<RawDim>>,
    pub transform: Option<Spanned<Entries<SStr, Spanned<RawValue>>>>,
    pub range: Option<Spanned<Vec<f64>>>,
}

/// One dimension: a size or a name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDim {
    Size(u64),
    Name(String),
}

/// `name: { reveal_to: [alice, bob] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub reveal_to: Vec<SStr>,
}

/// Any attribute or constant value.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<RawValue>),
}
