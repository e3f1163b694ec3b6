//! Process CPU and memory for /varz. Like the reference, CPU is sampled once a second and
//! /varz shows the usage of the last window, in percent with one decimal.

use super::Monitor;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub struct CpuMeter {
    /// (time of the last sample, CPU seconds used by then, percent over the last window)
    state: Mutex<(Instant, f64, f64)>,
}

impl CpuMeter {
    pub fn new() -> CpuMeter {
        CpuMeter {
            state: Mutex::new((Instant::now(), cpu_seconds(), 0.0)),
        }
    }

    /// Takes a sample, closing the current window.
    fn sample(&self) {
        let now = Instant::now();
        let used = cpu_seconds();
        let mut st = self.state.lock();
        let elapsed = now.duration_since(st.0).as_secs_f64();
        if elapsed > 0.0 {
            let pct = (used - st.1).max(0.0) / elapsed * 100.0;
            st.2 = (pct * 10.0).round() / 10.0;
        }
        st.0 = now;
        st.1 = used;
    }

    pub fn percent(&self) -> f64 {
        self.state.lock().2
    }
}

/// Samples CPU every second while the monitor exists.
pub fn spawn_sampler(mon: &Arc<Monitor>) {
    let weak: Weak<Monitor> = Arc::downgrade(mon);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(m) => m.cpu.sample(),
                None => return,
            }
        }
    });
}

/// User plus system CPU time of this process, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Resident set size in bytes (0 where /proc is unavailable).
pub fn rss_bytes() -> i64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Logical CPUs this process may run on.
pub fn cores() -> i64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_process_figures() {
        assert!(rss_bytes() > 0);
        assert!(cores() >= 1);
        assert!(cpu_seconds() >= 0.0);
        let m = CpuMeter::new();
        m.sample();
        assert!(m.percent() >= 0.0);
    }
}
