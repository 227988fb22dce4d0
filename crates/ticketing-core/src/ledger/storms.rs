//! The ledger's storm index (issue #27): per tenant and storm row, the times of the tickets of
//! their own and the latest storm ticket; the storm tickets not finished.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Ledger {
    /// Adds `key`'s storm part to the storm index (a ticket of its own counted, a storm ticket
    /// as its row's current one when it is the latest, and live until finished).
    pub(super) fn index_storm(&mut self, key: &TicketKey) {
        let Some(entry) = self.get(key) else { return };
        let tenant = entry.key.tenant().clone();
        match entry.storm.as_deref() {
            Some(StormPart::Counted { row, at }) => {
                let at = *at;
                let slot = self.storms.entry((tenant, row.clone())).or_default();
                let i = slot.counted.partition_point(|t| *t <= at);
                slot.counted.insert(i, at);
            }
            Some(StormPart::Ticket(storm)) => {
                let (row, started, finished) = (storm.row.clone(), storm.started_at, storm.finished);
                let slot = self.storms.entry((tenant, row)).or_default();
                if slot.current.as_ref().is_none_or(|(at, k)| (*at, k) <= (started, key)) {
                    slot.current = Some((started, key.clone()));
                }
                if finished {
                    self.live_storms.remove(key);
                } else {
                    self.live_storms.insert(key.clone());
                }
            }
            None => {}
        }
    }

    /// The latest storm ticket of `tenant` and `row`, if any (finished or not).
    pub fn storm_of(&self, tenant: &TenantId, row: &RowId) -> Option<&TicketKey> {
        if self.storms.is_empty() {
            return None;
        }
        self.storms.get(&(tenant.clone(), row.clone()))?.current.as_ref().map(|(_, k)| k)
    }

    /// How many tickets of their own `row` made for `tenant` with times in `(from, to]`.
    pub fn storm_counted(&self, tenant: &TenantId, row: &RowId, from: DateTime<Utc>, to: DateTime<Utc>) -> usize {
        let Some(slot) = self.storms.get(&(tenant.clone(), row.clone())) else { return 0 };
        slot.counted.partition_point(|t| *t <= to) - slot.counted.partition_point(|t| *t <= from)
    }

    /// The storm tickets not finished, in key order.
    pub fn live_storms(&self) -> impl Iterator<Item = &TicketKey> {
        self.live_storms.iter()
    }
}
