//! The `ref` protocol: plaintext, any number of parties, **insecure by design**.
//!
//! It is the oracle: every secure protocol's every op is tested against it. Input nodes send
//! the owner's plaintext to every other party (one round), so the scheduler's messaging and the
//! cost accounting are exercised exactly as they are for real protocols.

pub mod kernels;
