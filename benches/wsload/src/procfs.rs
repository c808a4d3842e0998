//! What the load generator reads about the server process from `/proc`.

use std::fs;

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system, all threads) the process has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let (user, sys) = cpu_split(pid)?;
    Ok(user + sys)
}

/// CPU seconds the process has used so far in user space and in the
/// kernel (all threads).
pub fn cpu_split(pid: u32) -> Result<(f64, f64), String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.rsplit_once(')').ok_or("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; `rest` starts at field 3.
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .ok_or_else(|| format!("no stat field {i}"))
    };
    Ok((ticks(14)? / USER_HZ, ticks(15)? / USER_HZ))
}

/// The process's resident set size in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS".into())
}

/// A CPU-time reading taken at the start of a measuring window.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark(Option<f64>);

impl CpuMark {
    /// Reads the server's CPU time now (nothing without a PID).
    pub fn now(pid: Option<u32>) -> Result<CpuMark, String> {
        Ok(CpuMark(pid.map(cpu_seconds).transpose()?))
    }

    /// CPU seconds used since this mark, if there is a PID.
    pub fn since(self, pid: Option<u32>) -> Result<Option<f64>, String> {
        match (self.0, pid) {
            (Some(start), Some(pid)) => Ok(Some(cpu_seconds(pid)? - start)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(rss_bytes(pid).unwrap() > 0);
    }
}
