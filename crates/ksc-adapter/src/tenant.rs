//! Tenant ids: one per virtual server, spelled `ksc:<server label>/vs:<id>` (the main server
//! is `vs:0`).

use ticketing_core::model::TenantId;

/// The virtual-server id of the main Administration Server.
pub const MAIN_SERVER: i64 = 0;

/// Builds the tenant id of virtual server `vserver` on the server labelled `label`.
pub fn tenant_id(label: &str, vserver: i64) -> TenantId {
    TenantId::new(format!("ksc:{label}/vs:{vserver}"))
}

/// Splits a tenant id into the server label and the virtual-server id; `None` when it is not
/// a Security Center tenant id.
pub fn parse_tenant_id(id: &TenantId) -> Option<(&str, i64)> {
    let rest = id.as_str().strip_prefix("ksc:")?;
    let (label, vs) = rest.rsplit_once("/vs:")?;
    let vs: i64 = vs.parse().ok()?;
    (!label.is_empty() && vs >= 0).then_some((label, vs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = tenant_id("hq/eu", 3);
        assert_eq!(t.as_str(), "ksc:hq/eu/vs:3");
        assert_eq!(parse_tenant_id(&t), Some(("hq/eu", 3)));
        assert_eq!(parse_tenant_id(&tenant_id("main", 0)), Some(("main", 0)));
        assert_eq!(parse_tenant_id(&TenantId::new("kbh:c-1")), None);
        assert_eq!(parse_tenant_id(&TenantId::new("ksc:x/vs:-1")), None);
        assert_eq!(parse_tenant_id(&TenantId::new("ksc:/vs:1")), None);
    }
}
