//! Reading node attributes, with ONNX's defaults.
//!
//! Many op families read the same attributes the same way (an integer with a default, a list
//! of axes, 2-D strides and pads), so the readers live here once; a pads or window attribute
//! the secure ops cannot express is an error naming the node.

use super::Converter;
use crate::ImportError;
use crate::proto::onnx::{AttributeProto, NodeProto};

pub(super) fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

pub(super) fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i())
}

pub(super) fn attr_f(n: &NodeProto, name: &str, default: f64) -> f64 {
    attr(n, name).map_or(default, |a| f64::from(a.f()))
}

pub(super) fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

impl Converter {
    /// Symmetric 2-D pads from ONNX's `[top, left, bottom, right]`.
    pub(super) fn pads(&self, n: &NodeProto) -> Result<[usize; 2], ImportError> {
        if let Some(a) = attr(n, "auto_pad")
            && !matches!(a.s(), b"NOTSET" | b"VALID" | b"")
        {
            return Err(self.err(n, "auto_pad SAME_UPPER/SAME_LOWER is not supported; give explicit pads".into()));
        }
        let p = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
        if p.len() != 4 || p[0] != p[2] || p[1] != p[3] || p.iter().any(|&x| x < 0) {
            return Err(self.err(n, format!("pads {p:?} are not supported (2-D, the same on both sides)")));
        }
        Ok([p[0] as usize, p[1] as usize])
    }

    pub(super) fn pair(&self, n: &NodeProto, name: &str, default: [usize; 2]) -> Result<[usize; 2], ImportError> {
        match attr_ints(n, name) {
            None => Ok(default),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => Err(self.err(n, format!("{name} {v:?} is not supported (2-D, positive)"))),
        }
    }
}
