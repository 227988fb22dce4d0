//! Hosts and their statuses: the host search, the chunk walk, the group masks and the
//! conversion into [`DeviceStatus`] (`ksc-api.md` §5, §6 and §9).
//!
//! ```text
//! HostGroup.FindHosts           wstrFilter, fields, KLGRP_FIND_FROM_CUR_VS_ONLY ─> strAccessor
//! ChunkAccessor.GetItemsCount   ─> n
//! ChunkAccessor.GetItemsChunk   nStart, nCount, until n hosts are read
//! ChunkAccessor.Release         always, also after an error
//! HostGroup.GetGroupInfoEx      KLSRV_HSTSTAT_CRITICAL / _WARNING masks, once per group and
//!                               `group_masks_ttl` (crate::masks), not once per snapshot
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use ticketing_core::model::{
    ActiveDescription, ComputerStatus, DESCRIPTIONS, Device, DeviceId, DeviceStatus, StatusDescription, StatusLevel,
};

mod chunk;

use crate::client::{KscClient, malformed, parse_response};
use crate::error::{ErrorClass, KscError};
use crate::value::{Params, Value};

/// The host attributes the adapter asks for (`vecFieldsToReturn`): what a snapshot uses.
/// `KLHST_WKS_LAST_VISIBLE` is not asked for (nothing downstream reads it, and its datetime
/// wrapper was a fifth of reading a host); [`HostRecord::last_visible`] is read when an
/// answer has it.
pub const HOST_FIELDS: [&str; 5] =
    ["KLHST_WKS_HOSTNAME", "KLHST_WKS_DN", "KLHST_WKS_STATUS_ID", "KLHST_WKS_STATUS_MASK", "KLHST_WKS_GROUPID"];

/// One host as the search returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// `KLHST_WKS_HOSTNAME`: the server's GUID of the host.
    pub hostname: String,
    /// `KLHST_WKS_DN`: display name.
    pub display_name: String,
    /// `KLHST_WKS_STATUS_ID`: 0 OK, 1 Critical, 2 Warning.
    pub status: ComputerStatus,
    /// `KLHST_WKS_STATUS_MASK`: status reason bits.
    pub mask: u64,
    /// `KLHST_WKS_GROUPID`: administration group.
    pub group_id: Option<i64>,
    /// `KLHST_WKS_LAST_VISIBLE`, when the answer has it (the snapshot's search does not ask
    /// for it: see [`HOST_FIELDS`]).
    pub last_visible: Option<DateTime<Utc>>,
}

/// A group's status rules: which mask bits raise Critical and which raise Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupMasks {
    /// `KLSRV_HSTSTAT_CRITICAL.KLSRV_HSTSTAT_MASK`.
    pub critical: u64,
    /// `KLSRV_HSTSTAT_WARNING.KLSRV_HSTSTAT_MASK`.
    pub warning: u64,
}

fn mask_bits(v: &Value) -> Option<u64> {
    match v {
        // `int` is 32-bit on the wire: a set bit 31 arrives negative.
        Value::Int(i) if *i < 0 && *i >= i64::from(i32::MIN) => Some(u64::from(*i as u32)),
        Value::Int(i) | Value::Long(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

/// Converts one `KLCSP_ITERATOR_ARRAY` item.
pub fn parse_host(rec: &Params) -> Result<HostRecord, String> {
    let hostname = rec
        .get("KLHST_WKS_HOSTNAME")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("KLHST_WKS_HOSTNAME missing")?
        .to_owned();
    let display_name = match rec.get("KLHST_WKS_DN").and_then(Value::as_str) {
        Some(dn) if !dn.is_empty() => dn.to_owned(),
        _ => hostname.clone(),
    };
    let status = match rec.get("KLHST_WKS_STATUS_ID").and_then(Value::as_i64) {
        Some(0) => ComputerStatus::Ok,
        Some(1) => ComputerStatus::Critical,
        Some(2) => ComputerStatus::Warning,
        Some(n) => {
            return Err(format!("host {hostname}: KLHST_WKS_STATUS_ID {n} is not 0, 1 or 2"));
        }
        None => return Err(format!("host {hostname}: KLHST_WKS_STATUS_ID missing")),
    };
    let mask = match rec.get("KLHST_WKS_STATUS_MASK") {
        None | Some(Value::Null) => 0,
        Some(v) => mask_bits(v).ok_or_else(|| format!("host {hostname}: KLHST_WKS_STATUS_MASK is not an integer"))?,
    };
    Ok(HostRecord {
        hostname,
        display_name,
        status,
        mask,
        group_id: rec.get("KLHST_WKS_GROUPID").and_then(Value::as_i64),
        last_visible: rec.get("KLHST_WKS_LAST_VISIBLE").and_then(Value::as_datetime),
    })
}

/// Reads every host of the session's virtual server.
pub(crate) async fn find_hosts(
    client: &KscClient,
    vserver: &str,
    filter: &str,
    chunk: usize,
    lifetime: Duration,
) -> Result<Vec<HostRecord>, KscError> {
    const FIND: &str = "HostGroup.FindHosts";
    let body = json!({
        "wstrFilter": filter,
        "vecFieldsToReturn": HOST_FIELDS,
        "vecFieldsToOrder": [],
        "pParams": {"KLSRVH_SLAVE_REC_DEPTH": 0, "KLGRP_FIND_FROM_CUR_VS_ONLY": true},
        "lMaxLifeTime": lifetime.as_secs().clamp(1, 7200),
    });
    let reply = client.call(vserver, FIND, &body).await?;
    let accessor = reply
        .out(FIND, "strAccessor")?
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(FIND, "strAccessor is not a string"))?
        .to_owned();
    // FindHosts answers the number of hosts found (`PxgRetVal`, ksc-api.md §5); a server that
    // leaves it out is asked with `GetItemsCount`. Saves one call per tenant and pass.
    let found = reply.retval(FIND).ok().and_then(Value::as_i64).and_then(|n| usize::try_from(n).ok());
    let result = read_chunks(client, vserver, &accessor, found, chunk).await;
    if let Err(e) = client.call(vserver, "ChunkAccessor.Release", &json!({"strAccessor": accessor})).await {
        tracing::warn!(vserver, error = %e, "releasing the host accessor failed");
    }
    result
}

async fn read_chunks(
    client: &KscClient,
    vserver: &str,
    accessor: &str,
    found: Option<usize>,
    chunk: usize,
) -> Result<Vec<HostRecord>, KscError> {
    const COUNT: &str = "ChunkAccessor.GetItemsCount";
    let count = match found {
        Some(n) => n,
        None => client
            .call(vserver, COUNT, &json!({"strAccessor": accessor}))
            .await?
            .retval(COUNT)?
            .as_i64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed(COUNT, "PxgRetVal is not a count"))?,
    };
    let chunk = chunk.max(1);
    let mut hosts = Vec::with_capacity(count);
    while hosts.len() < count {
        let body = json!({"strAccessor": accessor, "nStart": hosts.len(), "nCount": chunk.min(count - hosts.len())});
        let items =
            client.call_with(vserver, CHUNK, &body, &|_: &str, status, text: &str| parse_chunk(status, text)).await?;
        if items.is_empty() {
            // A snapshot must be complete: fewer hosts than counted is an error, not a result.
            return Err(malformed(CHUNK, format!("{} hosts counted, only {} returned", count, hosts.len())));
        }
        hosts.extend(items);
    }
    Ok(hosts)
}

/// `ChunkAccessor.GetItemsChunk`.
const CHUNK: &str = "ChunkAccessor.GetItemsChunk";

/// Reads a `ChunkAccessor.GetItemsChunk` answer (HTTP status and body) into its hosts, in
/// order; an empty chunk is `Ok(vec![])` (the caller knows how many it expected).
///
/// The common answer is read straight from the text into the records (issue 15: no JSON
/// tree, no [`Value`] tree, unused fields checked but not built, datetimes read without
/// chrono's format interpreter). Anything else is read by [`parse_chunk_via_value`], so the
/// result, and every error and its words, are exactly that function's.
pub fn parse_chunk(status: u16, body: &str) -> Result<Vec<HostRecord>, KscError> {
    if status == 200 {
        if let Some(hosts) = chunk::read(body) {
            return Ok(hosts);
        }
    }
    parse_chunk_via_value(status, body)
}

/// The general reading of a chunk answer: the envelope ([`parse_response`]), the whole
/// answer as [`Value`]s, then [`parse_host`] on each item. [`parse_chunk`] falls back to it,
/// and the benchmark compares the two.
#[doc(hidden)]
pub fn parse_chunk_via_value(status: u16, body: &str) -> Result<Vec<HostRecord>, KscError> {
    let reply = parse_response(CHUNK, status, body)?;
    let container =
        reply.out(CHUNK, "pChunk")?.as_params().ok_or_else(|| malformed(CHUNK, "pChunk is not a container"))?;
    let items = match container.get("KLCSP_ITERATOR_ARRAY") {
        None | Some(Value::Null) => &[][..],
        Some(v) => v.as_array().ok_or_else(|| malformed(CHUNK, "KLCSP_ITERATOR_ARRAY is not an array"))?,
    };
    items
        .iter()
        .map(|item| {
            let rec = item.as_params().ok_or_else(|| malformed(CHUNK, "host item is not a container"))?;
            parse_host(rec).map_err(|e| malformed(CHUNK, e))
        })
        .collect()
}

/// `HostGroup.GetGroupInfoEx` for the status masks of one group. `Ok(None)` when the server
/// will not tell (a `PxgError`, an answer without the masks); transport and session failures
/// are errors, because guessing levels then could flip tickets.
pub(crate) async fn group_masks(client: &KscClient, vserver: &str, group: i64) -> Result<Option<GroupMasks>, KscError> {
    const INFO: &str = "HostGroup.GetGroupInfoEx";
    let body = json!({"nGroupId": group, "pArrAttributes": ["KLSRV_HSTSTAT_CRITICAL", "KLSRV_HSTSTAT_WARNING"]});
    let reply = match client.call(vserver, INFO, &body).await {
        Ok(r) => r,
        Err(e) if matches!(e.class(), ErrorClass::Api | ErrorClass::Malformed | ErrorClass::NotFound) => {
            tracing::debug!(vserver, group, error = %e, "group status masks not readable, using default levels");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let Some(info) = reply.retval.as_ref().and_then(Value::as_params) else {
        return Ok(None);
    };
    let mask = |attr: &str| {
        info.get(attr).and_then(Value::as_params).and_then(|p| p.get("KLSRV_HSTSTAT_MASK")).and_then(mask_bits)
    };
    Ok(match (mask("KLSRV_HSTSTAT_CRITICAL"), mask("KLSRV_HSTSTAT_WARNING")) {
        (Some(critical), Some(warning)) => Some(GroupMasks { critical, warning }),
        _ => None,
    })
}

/// The level of a description when the group masks are not known.
pub(crate) fn default_level(
    desc: &StatusDescription,
    bit: u32,
    host: ComputerStatus,
    overrides: &BTreeMap<u32, StatusLevel>,
) -> StatusLevel {
    if let Some(l) = overrides.get(&bit) {
        return *l;
    }
    match desc.info() {
        Some(info) => info.default_level,
        None if host == ComputerStatus::Critical => StatusLevel::Critical,
        None => StatusLevel::Warning,
    }
}

/// Turns a host into a [`DeviceStatus`]; returns it with the number of unknown descriptions.
///
/// The overall status is `KLHST_WKS_STATUS_ID` (an OK host has no active description); each
/// bit of `KLHST_WKS_STATUS_MASK` becomes a description at the level its group's masks give
/// it (Critical first), else the default level.
pub fn host_status(
    host: &HostRecord,
    masks: Option<GroupMasks>,
    overrides: &BTreeMap<u32, StatusLevel>,
) -> (DeviceStatus, u64) {
    let device = Device { id: DeviceId::new(host.hostname.clone()), name: host.display_name.clone() };
    device_status(device, host.status, host.mask, masks, overrides)
}

/// [`host_status`] taking the record, so its names move into the device instead of being
/// copied.
pub(crate) fn into_host_status(
    host: HostRecord,
    masks: Option<GroupMasks>,
    overrides: &BTreeMap<u32, StatusLevel>,
) -> (DeviceStatus, u64) {
    let device = Device { id: DeviceId::new(host.hostname), name: host.display_name };
    device_status(device, host.status, host.mask, masks, overrides)
}

fn device_status(
    device: Device,
    status: ComputerStatus,
    mask: u64,
    masks: Option<GroupMasks>,
    overrides: &BTreeMap<u32, StatusLevel>,
) -> (DeviceStatus, u64) {
    if status == ComputerStatus::Ok {
        return (DeviceStatus { device, status: ComputerStatus::Ok, active: Vec::new() }, 0);
    }
    let mut unknown = 0;
    let active = (0..64u32)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|bit| {
            let description = StatusDescription::from_ksc_bit(bit);
            if description.info().is_none() {
                unknown += 1;
            }
            let level = match masks {
                Some(m) if m.critical & (1 << bit) != 0 => StatusLevel::Critical,
                Some(m) if m.warning & (1 << bit) != 0 => StatusLevel::Warning,
                _ => default_level(&description, bit, status, overrides),
            };
            ActiveDescription { description, level }
        })
        .collect();
    (DeviceStatus { device, status, active }, unknown)
}

/// The default Critical/Warning masks the catalogue implies (each bit at its default level).
pub fn default_masks() -> GroupMasks {
    DESCRIPTIONS.iter().fold(GroupMasks::default(), |mut m, d| {
        match d.default_level {
            StatusLevel::Critical => m.critical |= 1 << d.ksc_bit,
            StatusLevel::Warning => m.warning |= 1 << d.ksc_bit,
        }
        m
    })
}
