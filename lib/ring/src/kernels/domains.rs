//! The input domains of elementwise functions, as contracts that `ref` enforces.
//!
//! Why: secure protocols evaluate `exp` from a table on a bounded domain. Above 8 fss2pc holds
//! `exp` at `exp(8) ≈ 2981` up to the table's end at 16 and is wrong beyond (its `gates::lut`
//! clips exp's input from below only), which is no saturation of the function: a standalone
//! `exp(10)` would come out as 2981 with exit 0. `ref` computes `e^x`
//! exactly, so it refuses an input above 8 instead, naming it; inside softmax the lowering
//! subtracts the maximum first, so those inputs are never positive. (sigmoid, tanh and gelu
//! saturate for real outside their tables, so they need no contract.)

use mpcflow_sdk::{DType, Error, FixedPoint, Op, Result, Tensor};

/// The largest input of `exp` that secure protocols evaluate exactly to their stated bound.
pub const EXP_MAX: f64 = 8.0;

/// The width over which secure protocols compare a lookup's input (`exp`, `sigmoid`, `tanh`,
/// `gelu`) with its table's ends: one bit more than the node's `compare_bits` (narrowed by the
/// planner from declared ranges), so that an input within the width's reach (below
/// `2^(compare_bits − 1)` words, as a ReLU's must be) minus an end (within `2^(f+4)` words)
/// still fits; at least `f + 6` bits.
pub fn lookup_bits(fp: FixedPoint) -> u32 {
    (fp.compare_bits + 1).max(fp.frac_bits + 6).min(64)
}

/// The largest magnitude, in fixed-point words, a lookup's input may have: the reach of its
/// `compare_bits` (`2^(cb−1) − 1`, as a ReLU's input), and at most `2^62 − 1`, the range every
/// secure gate assumes. Within it the clip's comparisons over [`lookup_bits`] are exact (the
/// input minus a table end, within `2^(f+4)` words, fits), and where it lies inside a table's
/// domain a secure protocol may skip the clip.
pub fn lookup_reach(fp: FixedPoint) -> f64 {
    lookup_limit(fp) as f64
}

fn lookup_limit(fp: FixedPoint) -> i128 {
    (1i128 << (fp.compare_bits.clamp(2, 63) - 1)) - 1
}

/// The contract of a lookup: its input stays within [`lookup_reach`] (an int input counts as
/// `x·2^f`, as secure protocols make it fixed before the lookup).
fn check_lookup_width(a: &Tensor, fp: FixedPoint) -> Result<()> {
    let bits = lookup_bits(fp);
    if a.dtype == DType::Bit {
        return Ok(());
    }
    let limit = lookup_limit(fp);
    let show = |w: i128| (w as f64 / fp.scale()).to_string();
    match a.data.iter().map(|&w| super::words::fixed_scaled(a.dtype, w, fp)).find(|w| w.abs() > limit) {
        Some(w) => Err(Error::invalid(format!(
            "lookup input {} is beyond the reach of its clip's comparisons over {bits} bits (magnitude up to {}, \
             from the declared ranges or compare_bits); secure protocols would give a wrong answer: widen the \
             range that bounds it",
            show(w),
            show(limit)
        ))),
        None => Ok(()),
    }
}

/// Checks the inputs of `op` against its domain.
pub fn check_inputs(op: &Op, inputs: &[&Tensor], fp: FixedPoint) -> Result<()> {
    if let (Op::Exp | Op::Sigmoid | Op::Tanh | Op::Gelu, Some(a)) = (op, inputs.first()) {
        check_lookup_width(a, fp)?;
    }
    if let (Op::OneHot { depth }, Some(a)) = (op, inputs.first()) {
        check_indices(a, *depth, fp)?;
    }
    let (Op::Exp, Some(a)) = (op, inputs.first()) else { return Ok(()) };
    let value = |w: u64| match a.dtype {
        DType::Fixed => fp.decode(w),
        _ => w as i64 as f64,
    };
    match a.data.iter().map(|&w| value(w)).find(|&x| x > EXP_MAX) {
        Some(x) => Err(Error::invalid(format!(
            "exp of {x} is outside the domain secure protocols evaluate (inputs up to {EXP_MAX}; fss2pc gives \
             exp({EXP_MAX}) ≈ {:.0} up to {} and a wrong value beyond): keep the inputs at most {EXP_MAX}, for \
             example by subtracting the maximum first as softmax does",
            EXP_MAX.exp(),
            2.0 * EXP_MAX
        ))),
        None => Ok(()),
    }
}

/// The contract of `onehot`: every index an integer in `[0, depth)`. Secure protocols read the
/// index modulo a power of two from its low words (fss2pc: a point function over
/// `⌈log₂ depth⌉` bits), so an index outside, or a fraction, would pick a wrong or no class.
fn check_indices(a: &Tensor, depth: usize, fp: FixedPoint) -> Result<()> {
    let value = |w: u64| match a.dtype {
        DType::Fixed => fp.decode(w),
        _ => w as i64 as f64,
    };
    match a.data.iter().map(|&w| value(w)).find(|&x| x.fract() != 0.0 || x < 0.0 || x >= depth as f64) {
        Some(x) => Err(Error::invalid(format!(
            "onehot index {x} is not an integer in [0, {depth}) (the op's depth); secure protocols would pick a \
             wrong class or none"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn exp_above_its_domain_is_refused() {
        let e = check_inputs(&Op::Exp, &[&fx(&[3], &[1.0, 8.0, 10.5])], fp()).unwrap_err().to_string();
        assert!(e.contains("exp of 10.5 is outside the domain"), "{e}");
        assert!(check_inputs(&Op::Exp, &[&fx(&[2], &[8.0, -100.0])], fp()).is_ok());
        assert!(check_inputs(&Op::Exp, &[&int(&[1], &[9])], fp()).is_err());
        assert!(check_inputs(&Op::Sigmoid, &[&fx(&[1], &[50.0])], fp()).is_ok());
    }

    #[test]
    fn onehot_indices_outside_the_classes_are_refused() {
        let op = Op::OneHot { depth: 4 };
        assert!(check_inputs(&op, &[&fx(&[3], &[0.0, 3.0, 2.0])], fp()).is_ok());
        assert!(check_inputs(&op, &[&int(&[2], &[0, 3])], fp()).is_ok());
        for bad in [4.0, -1.0, 1.5] {
            let e = check_inputs(&op, &[&fx(&[2], &[0.0, bad])], fp()).unwrap_err().to_string();
            assert!(e.contains(&format!("onehot index {bad} is not an integer in [0, 4)")), "{e}");
        }
        assert!(check_inputs(&op, &[&int(&[1], &[-2])], fp()).is_err());
    }

    #[test]
    fn a_narrowed_lookup_refuses_inputs_past_its_width() {
        let mut narrow = fp();
        narrow.compare_bits = 23;
        assert_eq!(lookup_bits(narrow), 24);
        // 2^22 words: 64 at f = 16.
        assert!(check_inputs(&Op::Sigmoid, &[&fx(&[2], &[63.9, -63.9])], narrow).is_ok());
        let e = check_inputs(&Op::Sigmoid, &[&fx(&[2], &[1.0, -64.5])], narrow).unwrap_err().to_string();
        assert!(e.contains("lookup input -64.5 is beyond the reach of its clip's comparisons over 24 bits"), "{e}");
        narrow.compare_bits = 10;
        assert_eq!(lookup_bits(narrow), 22, "at least f + 6");
        // The reach is compare_bits': 2^9 − 1 words.
        assert!(check_inputs(&Op::Tanh, &[&fx(&[1], &[511.0 / 65536.0])], narrow).is_ok());
        assert!(check_inputs(&Op::Tanh, &[&fx(&[1], &[512.0 / 65536.0])], narrow).is_err());
        narrow.compare_bits = 63;
        assert_eq!(lookup_bits(narrow), 64);
        assert!(check_inputs(&Op::Gelu, &[&fx(&[1], &[1e6])], fp()).is_ok(), "64 bits: the ring's range");
        let e = check_inputs(&Op::Tanh, &[&int(&[1], &[1i64 << 47])], fp()).unwrap_err().to_string();
        assert!(e.contains("over 64 bits"), "an int past 2^(62−f) cannot become fixed: {e}");
        // An int input counts in fixed-point words, as the secure lookup sees it.
        narrow.compare_bits = 24;
        assert!(check_inputs(&Op::Sigmoid, &[&int(&[1], &[127])], narrow).is_ok());
        let e = check_inputs(&Op::Sigmoid, &[&int(&[1], &[128])], narrow).unwrap_err().to_string();
        assert!(e.contains("lookup input 128 is beyond the reach"), "{e}");
    }
}
