//! `Resize` and `Upsample` in `nearest` mode: every output position along a resized axis reads
//! one input position, which the public scales or sizes fix at import as ONNX specifies
//! (`coordinate_transformation_mode`, `nearest_mode`, `keep_aspect_ratio_policy`, `axes`). The
//! result is a public rearrangement of the secret input, exact under every protocol:
//!
//! - an integer upscale whose positions are `i ↦ ⌊i/s⌋` (torch's `nn.Upsample(scale_factor=s)`,
//!   exported as `asymmetric` with `floor`, and `half_pixel` with either rounding): a reshape, a
//!   broadcast and a reshape;
//! - evenly spaced positions `i ↦ a + i·k` (an integer downscale): one strided slice;
//! - any other map: one slice per run of equal positions, broadcast to the run's length, then
//!   one concatenation.
//!
//! The `linear` and `cubic` modes (weighted sums of neighbours), `tf_crop_and_resize` and
//! antialiasing are refused, naming the attribute.

use super::attrs::{attr, attr_i};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use mpcflow_sdk::Op;

/// How an output coordinate maps back onto the input (ONNX's `coordinate_transformation_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coordinates {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

/// How a fractional input coordinate picks a position (ONNX's `nearest_mode`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// The input position each of `out` output positions reads, for an axis of `len` input
/// positions resized by `scale` (ONNX's reference: `_interpolate_1d_with_x`, nearest).
fn positions(len: usize, out: usize, scale: f64, coords: Coordinates, nearest: Nearest) -> Vec<usize> {
    let scaled = scale * len as f64;
    (0..out)
        .map(|i| {
            let x = i as f64;
            let orig = match coords {
                Coordinates::HalfPixel => (x + 0.5) / scale - 0.5,
                Coordinates::HalfPixelSymmetric => {
                    let offset = len as f64 / 2.0 * (1.0 - out as f64 / scaled);
                    offset + (x + 0.5) / scale - 0.5
                }
                Coordinates::PytorchHalfPixel if scaled == 1.0 => -0.5,
                Coordinates::PytorchHalfPixel => (x + 0.5) / scale - 0.5,
                Coordinates::AlignCorners if scaled == 1.0 => 0.0,
                Coordinates::AlignCorners => x * (len as f64 - 1.0) / (scaled - 1.0),
                Coordinates::Asymmetric => x / scale,
            };
            let floor = orig.floor();
            let frac = orig - floor;
            let up = frac > 0.0
                && match nearest {
                    Nearest::RoundPreferFloor => frac > 0.5,
                    Nearest::RoundPreferCeil => frac >= 0.5,
                    Nearest::Floor => false,
                    Nearest::Ceil => true,
                };
            let pick = if up { floor + 1.0 } else { floor };
            pick.clamp(0.0, len as f64 - 1.0) as usize
        })
        .collect()
}

/// The string attribute `name`, or `default`.
fn attr_s(n: &NodeProto, name: &str, default: &str) -> String {
    attr(n, name).map_or_else(|| default.to_string(), |a| String::from_utf8_lossy(a.s()).into_owned())
}

impl Converter {
    /// `Resize` (opset 10 and later) and `Upsample` (opsets 7 to 9), nearest mode.
    pub(super) fn resize(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        let mode = attr_s(n, "mode", "nearest");
        if mode != "nearest" {
            return Err(
                self.err(n, format!("mode `{mode}` is not supported (only `nearest`, which moves values exactly)"))
            );
        }
        if attr_i(n, "antialias", 0) != 0 {
            return Err(self.err(n, "antialias = 1 is not supported".into()));
        }
        let x = self.operand(n, 0)?;
        let shape = self.shape_of(&x);
        let rank = shape.len();
        // Upsample and Resize-10 map coordinates asymmetrically; Resize-11 and later say how.
        let legacy = op == "Upsample" || self.opset < 11;
        let coords = match attr_s(n, "coordinate_transformation_mode", if legacy { "asymmetric" } else { "half_pixel" })
            .as_str()
        {
            "half_pixel" => Coordinates::HalfPixel,
            "half_pixel_symmetric" => Coordinates::HalfPixelSymmetric,
            "pytorch_half_pixel" => Coordinates::PytorchHalfPixel,
            "align_corners" => Coordinates::AlignCorners,
            "asymmetric" => Coordinates::Asymmetric,
            other => return Err(self.err(n, format!("coordinate_transformation_mode `{other}` is not supported"))),
        };
        let nearest = match attr_s(n, "nearest_mode", if legacy { "floor" } else { "round_prefer_floor" }).as_str() {
            "round_prefer_floor" => Nearest::RoundPreferFloor,
            "round_prefer_ceil" => Nearest::RoundPreferCeil,
            "floor" => Nearest::Floor,
            "ceil" => Nearest::Ceil,
            other => return Err(self.err(n, format!("nearest_mode `{other}` is not supported"))),
        };
        // The axes resized (opset 18), as positions in `shape`.
        let axes: Vec<usize> = match super::attrs::attr_ints(n, "axes") {
            None => (0..rank).collect(),
            Some(a) => a
                .iter()
                .map(|&ax| mpcflow_sdk::shape::norm_axis(ax, rank).map_err(|e| self.err(n, e.0)))
                .collect::<Result<_, _>>()?,
        };
        // Scales, or sizes, one per resized axis.
        let (scales_at, sizes_at) = match (op, self.opset) {
            ("Upsample", _) | (_, 10) => (1, usize::MAX),
            _ => (2, 3),
        };
        let given = |i: usize, what: &str| -> Result<Option<Vec<f64>>, ImportError> {
            if op == "Upsample" && i == 1 && self.opset < 9 {
                return Ok(super::attrs::attr(n, "scales").map(|a| a.floats.iter().map(|&f| f64::from(f)).collect()));
            }
            match self.opt(n, i) {
                None => Ok(None),
                Some(_) => {
                    let k = self.known(n, i, what)?;
                    Ok((!k.data.is_empty()).then_some(k.data))
                }
            }
        };
        let scales = given(scales_at, "scales")?;
        let sizes = if sizes_at == usize::MAX { None } else { given(sizes_at, "sizes")? };
        let count = |v: &Vec<f64>| v.len() == axes.len();
        let (out, factors): (Vec<usize>, Vec<f64>) = match (scales, sizes) {
            (Some(s), None) if count(&s) && s.iter().all(|&f| f > 0.0 && f.is_finite()) => {
                (axes.iter().zip(&s).map(|(&a, &f)| (shape[a] as f64 * f).floor() as usize).collect(), s)
            }
            (None, Some(z)) if count(&z) && z.iter().all(|&d| d >= 1.0 && d.is_finite()) => {
                let stretch: Vec<f64> = axes.iter().zip(&z).map(|(&a, &d)| d / shape[a] as f64).collect();
                match attr_s(n, "keep_aspect_ratio_policy", "stretch").as_str() {
                    "stretch" => (z.iter().map(|&d| d as usize).collect(), stretch),
                    policy @ ("not_larger" | "not_smaller") => {
                        let pick = if policy == "not_larger" { f64::min } else { f64::max };
                        let s = stretch.iter().copied().reduce(pick).unwrap_or(1.0);
                        let out = axes.iter().map(|&a| (s * shape[a] as f64 + 0.5) as usize).collect();
                        (out, vec![s; axes.len()])
                    }
                    other => return Err(self.err(n, format!("keep_aspect_ratio_policy `{other}` is not supported"))),
                }
            }
            (s, z) => {
                return Err(self.err(
                    n,
                    format!(
                        "needs either scales (positive, one per resized axis) or sizes, fixed by the model file; got scales {s:?} and sizes {z:?} for {} axes",
                        axes.len()
                    ),
                ));
            }
        };
        // Every position is a node's slice at worst: keep the graph what a model could mean.
        const MOST: usize = 1 << 24;
        if out.iter().any(|&d| d == 0 || d > MOST) || axes.iter().any(|&a| shape[a] == 0) {
            return Err(
                self.err(n, format!("resizes input {shape:?} to {out:?} on axes {axes:?}: an empty or over-long axis"))
            );
        }
        let mut y = x;
        for ((&axis, &len), &scale) in axes.iter().zip(&out).zip(&factors) {
            let picks = positions(shape[axis], len, scale, coords, nearest);
            y = self.select_along(n, base, y, axis, &picks)?;
        }
        self.set(n, Val::Secret(y));
        Ok(())
    }

    /// `x` with position `picks[i]` of `axis` at position `i` (see the module docs).
    fn select_along(
        &mut self,
        n: &NodeProto,
        base: &str,
        x: String,
        axis: usize,
        picks: &[usize],
    ) -> Result<String, ImportError> {
        let shape = self.shape_of(&x);
        let len = shape[axis];
        if picks.len() == len && picks.iter().enumerate().all(|(i, &p)| p == i) {
            return Ok(x);
        }
        // i ↦ ⌊i/s⌋ for an integer s: each position repeated s times.
        let s = picks.len() / len;
        if s > 1 && picks.len() == len * s && picks.iter().enumerate().all(|(i, &p)| p == i / s) {
            let mut split: Vec<usize> = shape[..=axis].to_vec();
            split.push(1);
            split.extend(&shape[axis + 1..]);
            let as_i64 = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
            let y = self.emit(n, &format!("{base}_repeat"), Op::Reshape { shape: as_i64(&split) }, vec![x])?;
            split[axis + 1] = s;
            let y = self.emit(n, &format!("{base}_repeat"), Op::Broadcast { shape: split }, vec![y])?;
            let mut merged = shape.clone();
            merged[axis] = len * s;
            return self.emit(n, base, Op::Reshape { shape: as_i64(&merged) }, vec![y]);
        }
        // i ↦ a + i·k: a strided slice.
        let (a, k) = (picks[0], picks.get(1).map_or(1, |&p| p.saturating_sub(picks[0])));
        if k >= 1 && picks.iter().enumerate().all(|(i, &p)| p == a + i * k) {
            let end = (a + (picks.len() - 1) * k + 1) as i64;
            let op =
                Op::Slice { starts: vec![a as i64], ends: vec![end], axes: vec![axis as i64], steps: vec![k as i64] };
            return self.emit(n, base, op, vec![x]);
        }
        // Runs of equal positions: a slice each, broadcast to the run, then one concatenation.
        let mut parts = vec![];
        let mut i = 0;
        while i < picks.len() {
            let p = picks[i];
            let run = picks[i..].iter().take_while(|&&q| q == p).count();
            let op =
                Op::Slice { starts: vec![p as i64], ends: vec![p as i64 + 1], axes: vec![axis as i64], steps: vec![] };
            let mut part = self.emit(n, &format!("{base}_pick"), op, vec![x.clone()])?;
            if run > 1 {
                let mut to = shape.clone();
                to[axis] = run;
                part = self.emit(n, &format!("{base}_pick"), Op::Broadcast { shape: to }, vec![part])?;
            }
            parts.push(part);
            i += run;
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        self.emit(n, base, Op::Concat { axis: axis as i64 }, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_upscales_repeat_each_position_under_every_usual_mode() {
        for (coords, nearest) in [
            (Coordinates::Asymmetric, Nearest::Floor),
            (Coordinates::HalfPixel, Nearest::RoundPreferFloor),
            (Coordinates::HalfPixel, Nearest::RoundPreferCeil),
            (Coordinates::PytorchHalfPixel, Nearest::RoundPreferFloor),
        ] {
            for s in 2..5 {
                let p = positions(5, 5 * s, s as f64, coords, nearest);
                assert_eq!(p, (0..5 * s).map(|i| i / s).collect::<Vec<_>>(), "{coords:?} {nearest:?} ×{s}");
            }
        }
    }

    #[test]
    fn positions_follow_the_onnx_reference() {
        // test_resize_downsample_scales_nearest: 4 → 2 at 0.6 (half_pixel, round_prefer_floor).
        assert_eq!(positions(4, 2, 0.6, Coordinates::HalfPixel, Nearest::RoundPreferFloor), vec![0, 2]);
        // align_corners on 4 → 8: x·3/7, rounded.
        assert_eq!(
            positions(4, 8, 2.0, Coordinates::AlignCorners, Nearest::RoundPreferFloor),
            vec![0, 0, 1, 1, 2, 2, 3, 3]
        );
        // asymmetric with round_prefer_ceil on 2 → 5 (scale 2.5): 0, .4, .8, 1.2, 1.6.
        assert_eq!(positions(2, 5, 2.5, Coordinates::Asymmetric, Nearest::RoundPreferCeil), vec![0, 0, 1, 1, 1]);
        // ceil on half_pixel with 2 → 4: −.25, .25, .75, 1.25 → 0 (clamped), 1, 1, 2 → 1.
        assert_eq!(positions(2, 4, 2.0, Coordinates::HalfPixel, Nearest::Ceil), vec![0, 1, 1, 1]);
    }
}
