//! How much of its memory the controller may spend on repositories being fetched and read.
//!
//! A repository is extracted in memory, up to a hard limit, while its objects are built; the
//! applies that follow need far less. So fetches are bounded by a memory budget, not only by the
//! reconcile concurrency: the budget (a flag, or the container's own memory limit less a baseline)
//! decides how many repositories are fetched at once and how large one may expand.
/// What the controller needs without any repository in flight (caches, clients, runtime).
pub const BASELINE: u64 = 48 * 1024 * 1024;
/// The largest a repository may expand to when memory allows (SPEC Reconcile 3).
pub const MAX_REPOSITORY_BYTES: u64 = 256 * 1024 * 1024;
/// Extraction limit → peak memory of one fetch-and-build (tar buffers, parsed objects).
const OVERHEAD: f64 = 1.25;
/// Below this a repository limit is useless: refuse the budget instead.
const MIN_REPOSITORY_BYTES: u64 = 8 * 1024 * 1024;

/// The plan for a memory budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Repositories fetched and built at once.
    pub fetches: usize,
    /// Largest expansion of one repository.
    pub max_repository_bytes: u64,
    /// What one repository's reconcile may hold, from its fetch to its last write (`None`:
    /// unbounded). At most `fetches` repositories are in that part of a reconcile at once.
    pub per_reconcile_bytes: Option<u64>,
}

/// What the controller keeps for each object it applied, as long as it runs: its metadata in
/// the watch cache, the short-cut's memo, the record of pkgr's own write.
pub const RESIDENT_PER_OBJECT: u64 = 3 * 1024;
/// What an object waiting for its apply costs beyond its JSON (its record, the plan's sets).
pub const PENDING_PER_OBJECT: u64 = 512;

/// Would applying `objects` objects of `json_bytes` JSON in all, with `in_flight` at once, fit
/// in `allowance`? `Err((needed, allowance))` when not.
pub fn fits(
    objects: usize,
    json_bytes: u64,
    in_flight: usize,
    allowance: Option<u64>,
) -> Result<(), (u64, u64)> {
    let Some(allowance) = allowance else {
        return Ok(());
    };
    let objects = objects as u64;
    let average = json_bytes.checked_div(objects).unwrap_or(0);
    // A body in flight is held parsed (about 8 times its JSON) with its reply.
    let in_flight = (in_flight as u64).min(objects) * average * 16;
    let needed = json_bytes + objects * (RESIDENT_PER_OBJECT + PENDING_PER_OBJECT) + in_flight;
    if needed <= allowance {
        Ok(())
    } else {
        Err((needed, allowance))
    }
}

/// Fit `concurrency` reconciles into `budget` bytes (`None`: unbounded).
pub fn plan(budget: Option<u64>, concurrency: usize) -> Result<Budget, String> {
    let concurrency = concurrency.max(1);
    let Some(budget) = budget else {
        return Ok(Budget {
            fetches: concurrency,
            max_repository_bytes: MAX_REPOSITORY_BYTES,
            per_reconcile_bytes: None,
        });
    };
    let per_fetch = (MAX_REPOSITORY_BYTES as f64 * OVERHEAD) as u64;
    let fetches = (budget / per_fetch).clamp(1, concurrency as u64) as usize;
    let max_repository_bytes = MAX_REPOSITORY_BYTES.min((budget as f64 / OVERHEAD) as u64);
    if max_repository_bytes < MIN_REPOSITORY_BYTES {
        return Err(format!(
            "a memory budget of {} MiB leaves too little for one repository (at least {} MiB); \
             raise the container's memory limit or --memory-budget",
            budget >> 20,
            ((MIN_REPOSITORY_BYTES as f64 * OVERHEAD) as u64) >> 20
        ));
    }
    Ok(Budget {
        fetches,
        max_repository_bytes,
        per_reconcile_bytes: Some(budget / fetches as u64),
    })
}

/// The budget from the container's memory limit (cgroup v2, then v1), less the baseline.
pub fn from_cgroup() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let limit =
        read("/sys/fs/cgroup/memory.max").or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))?;
    let limit: u64 = limit.trim().parse().ok()?;
    // cgroup v1 reports "no limit" as a huge number.
    (limit < 1 << 50).then(|| limit.saturating_sub(BASELINE))
}

/// A Kubernetes-style quantity of bytes: `512Mi`, `1Gi`, `300M`, `1048576`.
pub fn parse_quantity(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a memory quantity such as 512Mi or 1Gi"))?;
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use Ki, Mi, Gi, k, M or G)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_fits_or_says_how_much_it_needs() {
        let mib = |n: u64| n << 20;
        assert_eq!(fits(10_000, mib(10), 32, None), Ok(()));
        assert_eq!(fits(1_000, mib(1), 32, Some(mib(208))), Ok(()));
        assert!(fits(10_000, mib(10), 32, Some(mib(208))).is_ok());
        let (needed, allowance) = fits(100_000, mib(100), 32, Some(mib(208))).unwrap_err();
        assert!(needed > allowance && allowance == mib(208));
        assert_eq!(fits(0, 0, 32, Some(1)), Ok(()));
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_quantity("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_quantity("300M").unwrap(), 300_000_000);
        assert_eq!(parse_quantity("4096").unwrap(), 4096);
        assert!(parse_quantity("12Xi").is_err());
        assert!(parse_quantity("lots").is_err());
    }

    #[test]
    fn the_budget_bounds_fetches_and_repository_size() {
        let mib = |n: u64| n << 20;
        // The Deployment's 256Mi limit less the baseline: one fetch at a time, ~166 MiB each.
        let small = plan(Some(mib(256) - BASELINE), 8).unwrap();
        assert_eq!(small.fetches, 1);
        assert!(small.max_repository_bytes < MAX_REPOSITORY_BYTES);
        assert!((small.max_repository_bytes as f64 * OVERHEAD) as u64 <= mib(256) - BASELINE);
        // Room for three full repositories.
        let large = plan(Some(mib(1024)), 8).unwrap();
        assert_eq!(large.fetches, 3);
        assert_eq!(large.max_repository_bytes, MAX_REPOSITORY_BYTES);
        assert_eq!(plan(None, 8).unwrap().fetches, 8);
        assert_eq!(
            plan(Some(mib(100_000)), 8).unwrap().fetches,
            8,
            "never above the concurrency"
        );
        let err = plan(Some(mib(4)), 8).unwrap_err();
        assert!(err.contains("memory limit"), "{err}");
    }
}
