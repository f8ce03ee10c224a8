//! Test helpers: build tensors from readable values and run an op the way the planner would
//! (output info from [`mpcflow_sdk::shape::infer`], then [`super::eval_op`]).

use mpcflow_sdk::shape::{TensorInfo, Visibility, infer};
use mpcflow_sdk::{DType, FixedPoint, Op, Result, Tensor};

/// The default encoding (16 fractional bits).
pub fn fp() -> FixedPoint {
    FixedPoint::default()
}

/// One ulp of the default encoding.
pub fn ulp() -> f64 {
    fp().ulp()
}

/// A fixed-point tensor encoding `v`.
pub fn fx(shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_f64(DType::Fixed, shape.to_vec(), v, fp()).expect("test tensor shape")
}

/// An int tensor.
pub fn int(shape: &[usize], v: &[i64]) -> Tensor {
    let data = v.iter().map(|&x| x as u64).collect();
    Tensor::from_words(DType::Int, shape.to_vec(), data).expect("test tensor shape")
}

/// A bit tensor.
pub fn bit(shape: &[usize], v: &[u64]) -> Tensor {
    Tensor::from_words(DType::Bit, shape.to_vec(), v.to_vec()).expect("test tensor shape")
}

/// The output info the planner would infer.
pub fn out_info(op: &Op, inputs: &[&Tensor]) -> Result<TensorInfo> {
    let infos: Vec<TensorInfo> =
        inputs.iter().map(|t| TensorInfo { shape: t.shape.clone(), dtype: t.dtype, vis: Visibility::Secret }).collect();
    infer(op, &infos).map_err(|e| mpcflow_sdk::Error::invalid(e.to_string()))
}

/// Runs `op` with the default encoding.
pub fn try_run(op: &Op, inputs: &[&Tensor]) -> Result<Tensor> {
    let out = out_info(op, inputs)?;
    super::eval_op(op, inputs, &out, fp())
}

/// Runs `op` and panics on error (tests only).
pub fn run(op: &Op, inputs: &[&Tensor]) -> Tensor {
    match try_run(op, inputs) {
        Ok(t) => t,
        Err(e) => panic!("{op:?} failed: {e}"),
    }
}

/// Decoded reals of a tensor.
pub fn reals(t: &Tensor) -> Vec<f64> {
    t.to_f64(fp())
}

/// Words read as signed integers.
pub fn ints(t: &Tensor) -> Vec<i64> {
    t.data.iter().map(|&w| w as i64).collect()
}

/// Asserts that every real is within `tol` of the expected value.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w} (tol {tol}); all: {got:?}");
    }
}
