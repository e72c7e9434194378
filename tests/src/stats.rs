//! Figures: percentiles of latency samples, CPU time / RSS of a process from `/proc`, and the
//! section of `docs/benchmarks.md` a benchmark writes.

use std::time::Duration;

/// p50 / p99 / max (and count) of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Smallest.
    pub min: Duration,
}

impl Summary {
    /// Summarise `samples` (empty → all zero).
    pub fn of(samples: &[Duration]) -> Summary {
        let mut v = samples.to_vec();
        v.sort();
        let rank = |p: f64| -> Duration {
            if v.is_empty() {
                return Duration::ZERO;
            }
            let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i]
        };
        Summary {
            n: v.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: v.last().copied().unwrap_or_default(),
            min: v.first().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} p50={} p99={} max={}",
            self.n,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// A duration as milliseconds with one decimal (`12.3 ms`).
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// CPU time and memory of one process at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcSample {
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// Peak resident set size in KiB.
    pub hwm_kib: u64,
}

/// Read `/proc/<pid>/stat` and `/proc/<pid>/status` (`pid` 0 = this process).
pub fn proc_sample(pid: u32) -> anyhow::Result<ProcSample> {
    let base = if pid == 0 {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{base}/stat"))?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("{base}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_ticks: utime + stime,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// CPU time (user + system, every thread) this process has used so far, to the microsecond
/// (`getrusage(RUSAGE_SELF)`; `/proc` ticks are 10 ms).
pub fn self_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an rusage for the call's duration.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// CPU use between two samples over `wall`, in percent of one core.
pub fn cpu_percent(a: ProcSample, b: ProcSample, wall: Duration) -> f64 {
    let secs = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / ticks_per_second() as f64;
    100.0 * secs / wall.as_secs_f64().max(1e-9)
}

/// The 1, 5 and 15 minute load averages as `"a b c"` (empty when unreadable), for benchmark
/// reports taken on a machine that other work may share.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine, for benchmark reports: CPU model, cores, memory.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|k| k as f64 / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB RAM, Linux loopback")
}

/// Replace (or append) the section headed `section` (`## …`) of `docs/benchmarks.md` with `body`,
/// leaving other sections alone.
pub fn write_section(path: &std::path::Path, section: &str, body: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let new_section = format!("{section}\n\n{}\n", body.trim_end());
    let out = match old.find(section) {
        Some(start) => {
            let after = &old[start + section.len()..];
            let end = after
                .find("\n## ")
                .map(|i| start + section.len() + i + 1)
                .unwrap_or(old.len());
            format!(
                "{}{}{}",
                &old[..start],
                new_section,
                if end < old.len() {
                    format!("\n{}", &old[end..])
                } else {
                    String::new()
                }
            )
        }
        None => format!("{}\n\n{new_section}", old.trim_end()),
    };
    std::fs::write(path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&v);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(Summary::of(&[]).n, 0);
    }

    #[test]
    fn this_process_can_be_measured() {
        let s = proc_sample(0).unwrap();
        assert!(s.rss_kib > 0);
        let a = self_cpu();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(self_cpu() > a, "the loop used CPU");
    }
}
