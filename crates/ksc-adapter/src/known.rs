//! The hosts a status snapshot reads ([`HostSearch`], issue #29), and the names of those read
//! as not OK.
//!
//! An OK host has no active description, so a snapshot decides the same whether it lists OK
//! hosts or not: reconciliation closes an open ticket whose description is gone from its
//! computer, listed as OK or not listed at all. What an OK host adds is its name: the
//! decision records of the tickets it closes, and a status storm's "cleared" lines, name the
//! computer from the snapshot. So with [`HostSearch::Problems`]:
//!
//! ```text
//!  snapshot(vserver)
//!    ├─ first one since start ──> every host (host_filter)          ──┐
//!    └─ otherwise ──────────────> (&<host_filter>(KLHST_WKS_STATUS_ID<>0))
//!                                                                     │
//!   remember each host read as not OK (GUID -> display name) <────────┘
//!   each remembered host not in this answer ──> listed as OK under its name, for
//!   LISTED_OK snapshots in a row (a snapshot the engine drops unread is covered), then forgotten
//! ```
//!
//! A host with a ticket was read as not OK when the ticket was decided, so its name is known
//! when it turns OK; a ticket left open from before a start meets the first snapshot, which
//! reads every host. A removed host is listed as OK for those few snapshots, which decides the
//! same as its absence. What is remembered is bounded by the hosts with problems.

use std::collections::HashMap;
use std::sync::Mutex;

use ticketing_core::model::{ComputerStatus, Device, DeviceId, DeviceStatus};

use crate::config::HostSearch;

/// Snapshots in a row a remembered host is listed as OK once it is no longer read.
pub(crate) const LISTED_OK: u8 = 3;

/// The status condition a problems-only search adds to the configured filter (verified:
/// `KLHST_WKS_STATUS_ID` 0 OK, 1 Critical, 2 Warning; `<>` in `wstrFilter`).
const NOT_OK: &str = "(KLHST_WKS_STATUS_ID<>0)";

#[derive(Debug, Default)]
struct Known {
    /// Whether every host of the virtual server was read since start.
    all_read: bool,
    /// Host GUID → display name and the snapshots in a row it was not read since.
    hosts: HashMap<String, (String, u8)>,
}

/// Per virtual server: the hosts last read as not OK.
#[derive(Debug, Default)]
pub(crate) struct KnownHosts {
    vservers: Mutex<HashMap<String, Known>>,
}

/// What one snapshot searches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search {
    /// `wstrFilter`.
    pub(crate) filter: String,
    /// Whether it selects every host.
    pub(crate) all: bool,
    /// Whether its answer is remembered ([`HostSearch::Problems`]; with [`HostSearch::All`]
    /// every snapshot names every host, and nothing is kept).
    pub(crate) remember: bool,
}

impl KnownHosts {
    /// The search of the next snapshot of `vserver`.
    pub(crate) fn search(&self, vserver: &str, mode: HostSearch, host_filter: &str) -> Search {
        let remember = mode == HostSearch::Problems;
        let all = !remember || !self.lock().get(vserver).is_some_and(|k| k.all_read);
        if all {
            Search { filter: host_filter.to_owned(), all, remember }
        } else {
            Search { filter: format!("(&{host_filter}{NOT_OK})"), all, remember }
        }
    }

    /// After a successful search: remembers the hosts read as not OK, and appends each
    /// remembered host this search did not read as an OK device under its name.
    pub(crate) fn settle(&self, vserver: &str, search: &Search, devices: &mut Vec<DeviceStatus>) {
        if !search.remember {
            return;
        }
        let mut vservers = self.lock();
        let known = vservers.entry(vserver.to_owned()).or_default();
        known.all_read |= search.all;
        for (_, (_, missed)) in known.hosts.iter_mut() {
            *missed = missed.saturating_add(1);
        }
        for d in devices.iter() {
            if d.status == ComputerStatus::Ok {
                continue;
            }
            match known.hosts.get_mut(d.device.id.as_str()) {
                Some((name, missed)) => {
                    *missed = 0;
                    if *name != d.device.name {
                        name.clone_from(&d.device.name);
                    }
                }
                None => {
                    known.hosts.insert(d.device.id.as_str().to_owned(), (d.device.name.clone(), 0));
                }
            }
        }
        // Read in this answer (OK or not): listed as read. Read before and not now: OK.
        let read: std::collections::HashSet<&str> = if search.all {
            devices.iter().map(|d| d.device.id.as_str()).collect()
        } else {
            std::collections::HashSet::new()
        };
        let mut listed = Vec::new();
        known.hosts.retain(|id, (name, missed)| {
            if *missed == 0 {
                return true;
            }
            if *missed > LISTED_OK {
                return false;
            }
            if !read.contains(id.as_str()) {
                listed.push(DeviceStatus {
                    device: Device { id: DeviceId::new(id.clone()), name: name.clone() },
                    status: ComputerStatus::Ok,
                    active: Vec::new(),
                });
            }
            true
        });
        devices.extend(listed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.vservers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_core::model::{ActiveDescription, StatusDescription, StatusLevel};

    fn bad(id: &str, name: &str) -> DeviceStatus {
        DeviceStatus {
            device: Device { id: DeviceId::new(id), name: name.to_owned() },
            status: ComputerStatus::Warning,
            active: vec![ActiveDescription {
                description: StatusDescription::from_ksc_bit(3),
                level: StatusLevel::Warning,
            }],
        }
    }

    fn ok(id: &str, name: &str) -> DeviceStatus {
        DeviceStatus {
            device: Device { id: DeviceId::new(id), name: name.to_owned() },
            status: ComputerStatus::Ok,
            active: Vec::new(),
        }
    }

    fn names(devices: &[DeviceStatus]) -> Vec<(String, ComputerStatus)> {
        devices.iter().map(|d| (d.device.name.clone(), d.status)).collect()
    }

    #[test]
    fn the_first_search_reads_every_host_then_only_problems() {
        let k = KnownHosts::default();
        let first = k.search("vs", HostSearch::Problems, "(KLHST_WKS_HOSTNAME=\"*\")");
        assert_eq!(first, Search { filter: "(KLHST_WKS_HOSTNAME=\"*\")".into(), all: true, remember: true });
        k.settle("vs", &first, &mut vec![ok("g1", "PC-1")]);
        let next = k.search("vs", HostSearch::Problems, "(KLHST_WKS_HOSTNAME=\"*\")");
        assert_eq!(next.filter, "(&(KLHST_WKS_HOSTNAME=\"*\")(KLHST_WKS_STATUS_ID<>0))");
        assert!(!next.all);
        // Another virtual server starts with a full read of its own; All always reads all.
        assert!(k.search("other", HostSearch::Problems, "(x)").all);
        assert!(k.search("vs", HostSearch::All, "(x)").all);
    }

    #[test]
    fn host_search_all_remembers_nothing() {
        let k = KnownHosts::default();
        let all = k.search("vs", HostSearch::All, "(x)");
        assert!(all.all && !all.remember);
        k.settle("vs", &all, &mut vec![bad("g1", "PC-1")]);
        let mut next = Vec::new();
        k.settle("vs", &k.search("vs", HostSearch::All, "(x)"), &mut next);
        assert!(next.is_empty(), "nothing listed from memory");
        assert!(k.lock().is_empty());
    }

    #[test]
    fn a_host_that_turns_ok_is_listed_as_ok_under_its_name_then_forgotten() {
        let k = KnownHosts::default();
        let all = k.search("vs", HostSearch::Problems, "(x)");
        let mut first = vec![bad("g1", "PC-1"), ok("g2", "PC-2")];
        k.settle("vs", &all, &mut first);
        assert_eq!(first.len(), 2, "a full read adds nothing");
        let problems = k.search("vs", HostSearch::Problems, "(x)");
        let mut read = vec![bad("g1", "PC-1 renamed")];
        k.settle("vs", &problems, &mut read);
        assert_eq!(names(&read), [("PC-1 renamed".to_owned(), ComputerStatus::Warning)]);
        for _ in 0..LISTED_OK {
            let mut now_ok = Vec::new();
            k.settle("vs", &problems, &mut now_ok);
            assert_eq!(names(&now_ok), [("PC-1 renamed".to_owned(), ComputerStatus::Ok)]);
            assert_eq!(now_ok[0].device.id.as_str(), "g1");
        }
        let mut later = Vec::new();
        k.settle("vs", &problems, &mut later);
        assert!(later.is_empty(), "forgotten after {LISTED_OK} snapshots");
        assert!(k.lock()["vs"].hosts.is_empty());
    }

    #[test]
    fn a_host_with_problems_again_is_read_not_listed_twice() {
        let k = KnownHosts::default();
        let all = k.search("vs", HostSearch::Problems, "(x)");
        k.settle("vs", &all, &mut vec![bad("g1", "PC-1")]);
        let problems = k.search("vs", HostSearch::Problems, "(x)");
        k.settle("vs", &problems, &mut Vec::new());
        let mut again = vec![bad("g1", "PC-1")];
        k.settle("vs", &problems, &mut again);
        assert_eq!(again.len(), 1);
        // A full read that has the host (now OK) does not list it a second time.
        let mut full = vec![ok("g1", "PC-1")];
        k.settle("vs", &Search { filter: "(x)".into(), all: true, remember: true }, &mut full);
        assert_eq!(full.len(), 1);
    }
}
