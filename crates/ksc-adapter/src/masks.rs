//! Group masks kept across status snapshots (issue #29): `HostGroup.GetGroupInfoEx` once per
//! virtual server and group per [`KscConfig::group_masks_ttl`], not once per snapshot.
//!
//! The bound: a snapshot uses masks read at most `group_masks_ttl` before it started reading
//! them, so a change of a group's Critical/Warning levels on the server shows in the levels of
//! the descriptions at the latest one TTL (plus one status interval) after it was made. A
//! group whose masks could not be read (`None`: the defaults apply) is remembered for the same
//! time. Within one snapshot a group is looked up once whatever the TTL.
//!
//! [`KscConfig::group_masks_ttl`]: crate::KscConfig::group_masks_ttl

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::KscClient;
use crate::config::LevelSource;
use crate::error::KscError;
use crate::hosts::{GroupMasks, group_masks};

/// (virtual server, group) → when its masks were read, and what they were.
type Entries = HashMap<(String, i64), (Instant, Option<GroupMasks>)>;

/// The masks of every (virtual server, group) read within the TTL. One writer: the snapshot
/// that read them (entries are replaced whole, under the lock, never edited).
#[derive(Debug)]
pub(crate) struct MaskStore {
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl MaskStore {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn fresh(&self, vserver: &str, group: i64, now: Instant) -> Option<Option<GroupMasks>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // `get` with a borrowed key would need an owned String; 10,000 lookups a pass stay cheap.
        entries
            .get(&(vserver.to_owned(), group))
            .filter(|(read_at, _)| now.saturating_duration_since(*read_at) < self.ttl)
            .map(|(_, m)| *m)
    }

    fn remember(&self, vserver: &str, group: i64, read_at: Instant, masks: Option<GroupMasks>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert((vserver.to_owned(), group), (read_at, masks));
    }

    /// A snapshot's view of the store.
    pub(crate) fn for_snapshot<'a>(
        &'a self,
        client: &'a KscClient,
        vserver: &'a str,
        source: LevelSource,
    ) -> SnapshotMasks<'a> {
        SnapshotMasks { store: self, client, vserver, source, seen: HashMap::new() }
    }
}

/// The masks one snapshot uses: each group once, from the store while fresh, else read.
pub(crate) struct SnapshotMasks<'a> {
    store: &'a MaskStore,
    client: &'a KscClient,
    vserver: &'a str,
    source: LevelSource,
    seen: HashMap<i64, Option<GroupMasks>>,
}

impl SnapshotMasks<'_> {
    pub(crate) async fn get(&mut self, group: Option<i64>) -> Result<Option<GroupMasks>, KscError> {
        let (LevelSource::GroupMasks, Some(group)) = (self.source, group) else {
            return Ok(None);
        };
        if let Some(m) = self.seen.get(&group) {
            return Ok(*m);
        }
        let now = Instant::now();
        let m = match self.store.fresh(self.vserver, group, now) {
            Some(m) => m,
            None => {
                let m = group_masks(self.client, self.vserver, group).await?;
                self.store.remember(self.vserver, group, now, m);
                m
            }
        };
        self.seen.insert(group, m);
        Ok(m)
    }
}
