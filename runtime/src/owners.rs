//! Data owners who do not compute: `owners:` beside `parties:` in a pipeline.
//!
//! Five hospitals would rather hand their data to two or three computing servers than each run
//! a computing party (the "client-server" setting of Sharemind, MP-SPDZ's external clients and
//! ABY3's secret-shared outsourcing). An owner secret-shares each of its inputs to the
//! computing parties and receives only the outputs revealed to it. This module does so for
//! every protocol alike, by rewriting the plan (see [`crate::plan`]) and splitting values
//! around the run; no protocol needs to know that owners exist.
//!
//! **Inputs.** The owner draws one fresh 32-byte key `k_P` per computing party `P` for the
//! session. Its input `x` becomes one input per computing party, `x#share:P`, owned by `P`, and
//! `x` in the plan is their sum (ring addition, so it is exactly `x` for every dtype but bits,
//! which owners declare as ints). Every party but the last expands its share from its own key,
//! `s_P = PRG(k_P, "input", x)`; the last receives the words `x − Σ s_P`. Each party then feeds
//! its share to the protocol's ordinary input gate, and the protocol sees nothing new.
//!
//! **Outputs.** An output `y` revealed to owner `O` becomes `y + m`, with the mask
//! `m = Σ_P PRG(k_P, "mask", y)` input by the parties share by share (`y#mask:O:P`, each party
//! expanding its own key), and `y + m` (`y#for:O`) is revealed to every computing party, which
//! passes it on to `O`. `O`, who knows every key, subtracts `m`. The parties check nothing
//! about `y + m`; the owner checks that every party passed it the same words.
//!
//! **What each learns** (semi-honest, and no two computing parties colluding: fss2pc's and
//! rep3's own assumptions). A computing party sees its own key's stream, or `x` minus the
//! streams of keys it does not hold: uniformly random words either way (up to the PRG: AES-128
//! in counter mode, its key and starting counter the two halves of SHA-256 over a domain tag,
//! the owner's key, the purpose and the tensor's name). It sees `y + m` with one share of `m`
//! unknown to it: uniform again. The owner sees its inputs and what is revealed to it; the
//! dealer of fss2pc sees no share and no mask. Shapes are public, as they are for the parties'
//! own inputs: the parties pass each owner's input shapes on to each other and the dealer,
//! which plan with them. With a single computing party there would be nothing to split, so the
//! planner refuses owners unless there are at least two.
//!
//! **Cost.** Each share enters through the protocol's input gate, so an owner's input costs
//! what a party's does times the number of computing parties, plus the owner's words to the
//! last party (8 bytes per element) and a key to each; an output to an owner costs one more
//! revealed output. A protocol-specific sharing (rep3 could take replicated shares straight
//! from the owner) would save the input gates; this form keeps every protocol correct by
//! construction.

use crate::error::Error;
use mpcflow_fss::SeedRng;
use mpcflow_sdk::{DType, Tensor};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The plan name of party `party`'s share of owner input `input`.
pub fn share_name(input: &str, party: &str) -> String {
    format!("{input}#share:{party}")
}

/// The plan name of party `party`'s share of the mask on output `output` for owner `owner`.
pub fn mask_name(output: &str, owner: &str, party: &str) -> String {
    format!("{output}#mask:{owner}:{party}")
}

/// The name of the masked output `output + mask` revealed to the parties for owner `owner`.
pub fn masked_name(output: &str, owner: &str) -> String {
    format!("{output}#for:{owner}")
}

/// An input an owner brings, as the plan shares it.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerInput {
    /// The input's name in the pipeline.
    pub name: String,
    /// The owner.
    pub owner: String,
    /// Its dtype.
    pub dtype: DType,
    /// Its shape in this plan.
    pub shape: Vec<usize>,
}

/// An output revealed to an owner, as the plan masks it.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerOutput {
    /// The output's name in the pipeline.
    pub name: String,
    /// The owner it is revealed to.
    pub owner: String,
    /// The output's own dtype (the masked value is an int where this is a bit).
    pub dtype: DType,
    /// Its shape in this plan.
    pub shape: Vec<usize>,
}

impl OwnerOutput {
    /// The dtype of its mask: fixed for a fixed output, int otherwise.
    pub fn mask_dtype(&self) -> DType {
        if self.dtype == DType::Fixed { DType::Fixed } else { DType::Int }
    }
}

/// What a plan asks of its data owners.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnerIo {
    /// The owners, as the pipeline lists them.
    pub owners: Vec<String>,
    /// Their inputs, in declaration order.
    pub inputs: Vec<OwnerInput>,
    /// The outputs revealed to them, in declaration order.
    pub outputs: Vec<OwnerOutput>,
}

impl OwnerIo {
    /// Whether the plan has data owners at all.
    pub fn has_owners(&self) -> bool {
        !self.owners.is_empty()
    }

    /// Whether `name` is a masked output (`y#for:O`) rather than one the pipeline declares.
    pub fn is_masked_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| masked_name(&o.name, &o.owner) == name)
    }
}

/// One owner's keys for one session: one per computing party, in party order.
pub struct OwnerKeys(Vec<[u8; 32]>);

impl std::fmt::Debug for OwnerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerKeys({} keys)", self.0.len())
    }
}

impl OwnerKeys {
    /// Fresh keys from the operating system's entropy.
    pub fn fresh(parties: usize) -> Result<OwnerKeys, Error> {
        let mut keys = vec![[0u8; 32]; parties];
        for k in &mut keys {
            getrandom::fill(k).map_err(|e| Error::Internal(format!("no entropy for an owner's keys: {e}")))?;
        }
        Ok(OwnerKeys(keys))
    }

    /// Party `p`'s key: what the owner sends it.
    pub fn key(&self, p: usize) -> [u8; 32] {
        self.0[p]
    }
}

/// `n` pseudorandom words for `purpose` and tensor `name` from `key`.
fn stream(key: &[u8; 32], purpose: &str, name: &str, n: usize) -> Vec<u64> {
    let mut h = Sha256::new();
    h.update(b"mpcflow/owner/v1\0");
    h.update(key);
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    let mut rng = SeedRng::from_seed(h.finalize().into());
    (0..n).map(|_| rng.next_u64()).collect()
}

/// At the owner: the last computing party's share of input `name` with value `x`, the words
/// `x − Σ PRG(k_P)` over the other parties. (The others expand their shares from their keys.)
pub fn last_share(keys: &OwnerKeys, name: &str, x: &Tensor) -> Tensor {
    let mut words = x.data.clone();
    for k in &keys.0[..keys.0.len().saturating_sub(1)] {
        for (w, s) in words.iter_mut().zip(stream(k, "input", name, x.data.len())) {
            *w = w.wrapping_sub(s);
        }
    }
    Tensor { dtype: x.dtype, shape: x.shape.clone(), data: words }
}

/// At computing party `p` of `parties`: its share of every owner input and of every owner
/// output's mask, by plan name. `keys` holds the key each owner sent it; `last` the words each
/// owner sent it as the last party, by input name.
pub fn party_tensors(
    io: &OwnerIo,
    parties: &[String],
    p: usize,
    keys: &HashMap<String, [u8; 32]>,
    last: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, Error> {
    let me = &parties[p];
    let key = |owner: &str| {
        keys.get(owner).ok_or_else(|| Error::Internal(format!("{me} has no key from data owner {owner}")))
    };
    let mut out = HashMap::new();
    for i in &io.inputs {
        let n = mpcflow_sdk::tensor::numel(&i.shape);
        let share = if p + 1 == parties.len() {
            let t = last
                .get(&i.name)
                .ok_or_else(|| Error::Internal(format!("{me} has no share of `{}` from {}", i.name, i.owner)))?;
            if t.shape != i.shape || t.dtype != i.dtype {
                return Err(Error::Internal(format!(
                    "the share of `{}` from {} is {} {:?}, the plan expects {} {:?}",
                    i.name, i.owner, t.dtype, t.shape, i.dtype, i.shape
                )));
            }
            t.clone()
        } else {
            Tensor { dtype: i.dtype, shape: i.shape.clone(), data: stream(key(&i.owner)?, "input", &i.name, n) }
        };
        out.insert(share_name(&i.name, me), share);
    }
    for o in &io.outputs {
        let n = mpcflow_sdk::tensor::numel(&o.shape);
        let data = stream(key(&o.owner)?, "mask", &o.name, n);
        out.insert(mask_name(&o.name, &o.owner, me), Tensor { dtype: o.mask_dtype(), shape: o.shape.clone(), data });
    }
    Ok(out)
}

/// At the owner: output `out` from the masked words the parties revealed.
pub fn unmask(keys: &OwnerKeys, out: &OwnerOutput, masked: &Tensor) -> Result<Tensor, Error> {
    if masked.shape != out.shape {
        return Err(Error::Internal(format!(
            "masked output `{}` has shape {:?}, the plan says {:?}",
            out.name, masked.shape, out.shape
        )));
    }
    let mut words = masked.data.clone();
    for k in &keys.0 {
        for (w, m) in words.iter_mut().zip(stream(k, "mask", &out.name, masked.data.len())) {
            *w = w.wrapping_sub(m);
        }
    }
    Ok(Tensor { dtype: out.dtype, shape: out.shape.clone(), data: words })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parties() -> Vec<String> {
        vec!["s1".into(), "s2".into(), "s3".into()]
    }

    #[test]
    fn shares_add_up_to_the_input_and_masks_come_off() {
        let io = OwnerIo {
            owners: vec!["h".into()],
            inputs: vec![OwnerInput { name: "x".into(), owner: "h".into(), dtype: DType::Int, shape: vec![3] }],
            outputs: vec![OwnerOutput { name: "y".into(), owner: "h".into(), dtype: DType::Bit, shape: vec![2] }],
        };
        let keys = OwnerKeys::fresh(3).unwrap();
        let x = Tensor { dtype: DType::Int, shape: vec![3], data: vec![5, u64::MAX, 1 << 63] };
        let last = HashMap::from([("x".to_string(), last_share(&keys, "x", &x))]);
        let mut sum = vec![0u64; 3];
        let mut mask = vec![0u64; 2];
        for p in 0..3 {
            let got = party_tensors(&io, &parties(), p, &HashMap::from([("h".into(), keys.key(p))]), &last).unwrap();
            let share = &got[&share_name("x", &parties()[p])];
            // No share is the input itself.
            assert_ne!(share.data, x.data);
            sum.iter_mut().zip(&share.data).for_each(|(s, w)| *s = s.wrapping_add(*w));
            let m = &got[&mask_name("y", "h", &parties()[p])];
            assert_eq!(m.dtype, DType::Int);
            mask.iter_mut().zip(&m.data).for_each(|(s, w)| *s = s.wrapping_add(*w));
        }
        assert_eq!(sum, x.data);
        let y = [1u64, 0];
        let masked = Tensor {
            dtype: DType::Int,
            shape: vec![2],
            data: y.iter().zip(&mask).map(|(a, b)| a.wrapping_add(*b)).collect(),
        };
        let back = unmask(&keys, &io.outputs[0], &masked).unwrap();
        assert_eq!((back.dtype, back.data), (DType::Bit, y.to_vec()));
        // Another session's keys give other shares.
        let other = OwnerKeys::fresh(3).unwrap();
        assert_ne!(last_share(&other, "x", &x).data, last["x"].data);
    }

    #[test]
    fn a_missing_key_or_share_is_an_error_naming_the_owner() {
        let io = OwnerIo {
            owners: vec!["h".into()],
            inputs: vec![OwnerInput { name: "x".into(), owner: "h".into(), dtype: DType::Fixed, shape: vec![1] }],
            outputs: vec![],
        };
        let e = party_tensors(&io, &parties(), 0, &HashMap::new(), &HashMap::new()).unwrap_err();
        assert!(e.to_string().contains("from data owner h"), "{e}");
        let e = party_tensors(&io, &parties(), 2, &HashMap::new(), &HashMap::new()).unwrap_err();
        assert!(e.to_string().contains("no share of `x` from h"), "{e}");
    }
}
