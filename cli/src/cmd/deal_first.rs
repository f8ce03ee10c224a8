//! `--deal-first[=SIZE]`: how much material a run dealt first may hold at once.
//!
//! Dealt first, the material waits in memory until the parties use it. Most plans' material fits
//! (1M ReLUs: 1.9 GB for the two parties), a full-size model's does not (BERT-base: 25 to 33
//! GiB), so the runtime deals and runs it in phases of at most a budget
//! ([`mpcflow_runtime::schedule::phases`]). Without a size the budget is half of the memory the
//! kernel reports available (`MemAvailable`), which leaves the other half to the run's own
//! values; where the kernel reports none (off Linux) the material is dealt in one phase.

use anyhow::{Result, anyhow};

/// The budget `--deal-first` asked for, in bytes (all parties' material together).
pub fn budget(arg: &str) -> Result<u64> {
    if arg == "auto" {
        return Ok(available_memory().map_or(u64::MAX, |b| b / 2));
    }
    parse_size(arg).filter(|&b| b > 0).ok_or_else(|| {
        anyhow!("--deal-first={arg}: give a size such as 4GiB or 512MiB (or no value, for half the available memory)")
    })
}

/// `4GiB`, `1.5GB`, `512MiB`, `512M`, or bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (Linux).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_user_writes_them() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("1.5gb"), Some(3 << 29));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        for bad in ["", "GiB", "4 parsecs", "-1G", "1e3", "4.2.1G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert!(budget("0").is_err());
        let auto = budget("auto").unwrap();
        assert!(auto > 0);
    }
}
