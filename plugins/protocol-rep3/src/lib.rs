//! `mpcflow-protocol-rep3`: three computing parties with an honest majority, no dealer.
//!
//! Every secret tensor is **replicated**: three additive shares over `Z(2^64)`, party `i` holding
//! shares `i` and `i + 1` ([`share`]), the sharing of Araki, Furukawa, Lindell, Nof and Ohara
//! (CCS 2016) and of ABY3 (Mohassel and Rindal, CCS 2018) and Porthos. Linear ops are local;
//! products of two secrets take one round of resharing ([`gates::product`]).
//!
//! **Comparisons and ReLU** are a bit circuit on the shares ([`gates::circuit`], as ABY3
//! extracts a sign): the sign bit of the difference by a carry tree over bit planes, then two
//! rounds back to words. About 45 bytes per element per party and no keys, in
//! `⌈log₂(w − 1)⌉ + 4` rounds (10 at 64 bits, fewer for a narrowed width): in one process on two
//! cores, 1M ReLUs take 0.2 s against 0.3 s for the dealt gate below. For the `wan` network
//! profile, where rounds cost more than bytes, the planner keeps the dealt gate.
//!
//! **Truncation, lookup tables and roots** (and comparisons for `wan`) are fss2pc's masked-wire
//! gates (the `mpcflow-fss-gates` library), with one of the three computing parties dealing
//! each node's keys to the other two as the node runs ([`gates::assisted`]): the
//! honest-majority trust model allows it, and it keeps rep3's truncation exact (no failure
//! probability, unlike ABY3's local truncation) at fss2pc's cost plus one round (the dealing
//! party's message, keys included, goes out online). The dealing party rotates with the node.
//!
//! # Security
//!
//! Semi-honest, honest majority: one corrupted party learns nothing about the others' inputs.
//! - Party `i`'s two shares of any secret are uniformly random words.
//! - Inputs: the owner's messages are seeds and a share masked by a share the receiver never
//!   sees ([`gates::io`]).
//! - Products: what a party receives is masked by a pseudorandom word whose seed goes to the
//!   other party ([`gates::product`]).
//! - Circuits: every message is a fresh seed, bits masked by a stream whose seed the receiver
//!   never sees, or a resharing as for products ([`gates::circuit`]).
//! - Assisted gates: the dealing party sends only; each evaluator sees what a party of fss2pc
//!   sees (masked values under fresh masks, its key material) plus its replicated shares of the
//!   input and output, which are independent of that view ([`gates::assisted`] gives the
//!   argument).
//! - Outputs: only the parties named in the plan receive the missing share.
//!
//! Two parties together learn everything, as in every honest-majority protocol. The fresh seeds
//! come from the operating system's entropy; keys expand them with fixed-key AES.
//!
//! # Accuracy
//!
//! As fss2pc (see `mpcflow_fss_gates`'s gates): exact for linear ops, integer products,
//! comparisons and ReLU; within one ulp for fixed-point products, scales and right shifts
//! (exact truncation of fss2pc, rounding half up) for `|x·y| < 2^(62−2f)`; lookup tables and
//! roots within fss2pc's stated bounds.

pub mod gates;
pub mod protocol;
pub mod share;
mod throttle;

pub use protocol::Rep3;
