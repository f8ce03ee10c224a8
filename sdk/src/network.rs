//! The network a session expects between its parties: a profile that protocols use to trade
//! rounds against bytes and local computation when they have several ways to compute a node.
//!
//! fss2pc, for instance, computes a comparison either in one round with a large key or in two
//! rounds with a key half the size and a third of the AES work (see its `gates` module): where
//! a round trip costs microseconds the second wins, where it costs 80 ms only large tensors
//! repay the extra round. The profile is part of the plan (and of its fingerprint): every process
//! of a session must plan with the same one, so they pick the same forms.
//!
//! The figures are stated assumptions, not measurements: `local` is one machine (parties in
//! one process or over loopback), `lan` a 10 Gbit/s data-centre network with 0.5 ms round trips
//! (the setting of Sigma's and Orca's LAN figures), `wan` 400 Mbit/s with 80 ms round trips.

use serde::{Deserialize, Serialize};

/// A network profile. `lan` by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Parties on one machine (one process, or processes over loopback).
    Local,
    /// A data-centre network: 10 Gbit/s, 0.5 ms round trips.
    #[default]
    Lan,
    /// A wide-area network: 400 Mbit/s, 80 ms round trips.
    Wan,
}

impl Network {
    /// Every profile, in order.
    pub const ALL: [Network; 3] = [Network::Local, Network::Lan, Network::Wan];

    /// The name used on the command line and in plans.
    pub fn name(self) -> &'static str {
        match self {
            Network::Local => "local",
            Network::Lan => "lan",
            Network::Wan => "wan",
        }
    }

    /// The profile called `name` (`local`, `lan`, `wan`).
    pub fn from_name(name: &str) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.name() == name)
    }

    /// Seconds per round trip.
    pub fn rtt_seconds(self) -> f64 {
        match self {
            Network::Local => 20e-6,
            Network::Lan => 0.5e-3,
            Network::Wan => 80e-3,
        }
    }

    /// Bytes per second on one link.
    pub fn bytes_per_second(self) -> f64 {
        match self {
            Network::Local => 10e9,
            Network::Lan => 1.25e9,
            Network::Wan => 50e6,
        }
    }

    /// Estimated seconds for `rounds` round trips carrying `bytes` bytes on one link.
    pub fn seconds(self, rounds: u32, bytes: u64) -> f64 {
        f64::from(rounds) * self.rtt_seconds() + bytes as f64 / self.bytes_per_second()
    }

    /// `lan (10 Gbit/s, 0.5 ms round trips)` and the like, for plans and reports.
    pub fn describe(self) -> String {
        let gbit = self.bytes_per_second() * 8.0 / 1e9;
        let rate = if gbit >= 1.0 { format!("{gbit:.0} Gbit/s") } else { format!("{:.0} Mbit/s", gbit * 1e3) };
        format!("{} ({rate}, {} ms round trips)", self.name(), self.rtt_seconds() * 1e3)
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_describe() {
        for n in Network::ALL {
            assert_eq!(Network::from_name(n.name()), Some(n));
        }
        assert_eq!(Network::from_name("LAN"), None);
        assert_eq!(Network::Lan.describe(), "lan (10 Gbit/s, 0.5 ms round trips)");
        assert_eq!(Network::Wan.describe(), "wan (400 Mbit/s, 80 ms round trips)");
        assert_eq!(Network::Local.describe(), "local (80 Gbit/s, 0.02 ms round trips)");
        assert!((Network::Wan.seconds(2, 50_000_000) - 1.16).abs() < 1e-9);
    }
}
