//! The open-file limit (RLIMIT_NOFILE) of this process and of the servers, read from
//! `/proc/<pid>/limits`: every socket is a file descriptor at both ends, so a run with more
//! sockets than a limit allows would fail halfway, with errors that do not say why.

use super::client::Error;

/// Descriptors a process needs besides its sockets: stdio, the runtime's epoll and wake-up
/// fds, HTTP connections of setup and sending, a server's database files and listener.
pub const MARGIN: u64 = 100;

/// The soft and hard open-file limits of `pid` (this process when `None`).
pub fn open_files(pid: Option<u32>) -> Option<(u64, u64)> {
    let path = pid.map_or_else(
        || "/proc/self/limits".to_owned(),
        |pid| format!("/proc/{pid}/limits"),
    );
    let limits = std::fs::read_to_string(path).ok()?;
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    let mut values = line.split_whitespace();
    let mut value = || match values.next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some((value()?, value()?))
}

/// Fails, naming the limit, when `sockets` plus [`MARGIN`] (and `extra` more here) exceed
/// the open-file limit of this process or of any of `server_pids`. An unreadable limit (no
/// `/proc`, a server on another machine) is not checked.
pub fn check(sockets: usize, extra: usize, server_pids: &[u32]) -> Result<(), Error> {
    let needed = (sockets as u64).saturating_add(MARGIN);
    let ours = needed.saturating_add(extra as u64);
    if let Some((soft, hard)) = open_files(None) {
        if ours > soft {
            return Err(too_many(sockets, ours, "this process (chat-load)", soft, hard).into());
        }
    }
    for &pid in server_pids {
        if let Some((soft, hard)) = open_files(Some(pid)) {
            if needed > soft {
                return Err(too_many(sockets, needed, &format!("server {pid}"), soft, hard).into());
            }
        }
    }
    Ok(())
}

fn too_many(sockets: usize, needed: u64, whose: &str, soft: u64, hard: u64) -> String {
    format!(
        "{sockets} sockets need about {needed} open files in {whose}, but its open-file limit \
         (RLIMIT_NOFILE) is {soft} (hard limit {hard}); use fewer sockets, at most about {}, or \
         raise the limit (`ulimit -n`, up to the hard limit)",
        soft.saturating_sub(needed - sockets as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_limit() {
        let (soft, hard) = open_files(None).expect("Linux has /proc/self/limits");
        assert!(soft > 0 && soft <= hard);
        if soft < u64::MAX {
            assert!(check(usize::try_from(soft).unwrap_or(usize::MAX), 0, &[]).is_err());
        }
        assert!(check(1, 0, &[]).is_ok());
    }
}
