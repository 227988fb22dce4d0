//! Companies and how they are spelled as core tenants.
//!
//! One Business Hub company is one tenant for both products (Endpoint Security Cloud and
//! Office 365), spelled `kbh:<company id>`; it maps to one PSA account.

use std::fmt;

use ticketing_core::model::{Product, Tenant, TenantId};

use crate::api;
use crate::error::KbhError;

/// Prefix of every Business Hub tenant id.
pub const TENANT_PREFIX: &str = "kbh:";

/// A Business Hub company id (`c-7f3a`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompanyId(String);

impl CompanyId {
    /// Wraps a company id as Business Hub spells it.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The core tenant id: `kbh:<company id>`.
    pub fn tenant_id(&self) -> TenantId {
        TenantId::new(format!("{TENANT_PREFIX}{}", self.0))
    }

    /// Parses a tenant id made by [`CompanyId::tenant_id`].
    pub fn from_tenant(tenant: &TenantId) -> Result<Self, KbhError> {
        match tenant.as_str().strip_prefix(TENANT_PREFIX) {
            Some(id) if !id.is_empty() => Ok(Self(id.to_owned())),
            _ => Err(KbhError::Tenant(tenant.as_str().to_owned())),
        }
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A company as Business Hub lists it, for mapping to a PSA account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    /// Its id.
    pub id: CompanyId,
    /// Its name.
    pub name: String,
    /// The products it has a workspace for (`kes_cloud` → Endpoint Security Cloud, `ksmo365` →
    /// Office 365).
    pub products: Vec<Product>,
    /// Product codes this crate does not know, kept as sent.
    pub other_products: Vec<String>,
}

impl Company {
    /// The core tenant (`kbh:<id>`, name).
    pub fn tenant(&self) -> Tenant {
        Tenant { id: self.id.tenant_id(), name: self.name.clone() }
    }

    /// Whether the company has a workspace of `product`.
    pub fn has(&self, product: Product) -> bool {
        self.products.contains(&product)
    }

    pub(crate) fn from_dto(dto: api::CompanyDto) -> Self {
        let mut products = Vec::new();
        let mut other_products = Vec::new();
        for p in dto.products {
            match p.as_str() {
                api::PRODUCT_KES_CLOUD => products.push(Product::EndpointCloud),
                api::PRODUCT_KSMO365 => products.push(Product::Office365),
                _ => other_products.push(p),
            }
        }
        Self { id: CompanyId(dto.id), name: dto.name, products, other_products }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_round_trip() {
        let c = CompanyId::new("c-7f3a");
        assert_eq!(c.tenant_id().as_str(), "kbh:c-7f3a");
        assert_eq!(CompanyId::from_tenant(&c.tenant_id()).unwrap(), c);
        for bad in ["c-7f3a", "kbh:", "ksc:main/vs:3"] {
            assert!(matches!(
                CompanyId::from_tenant(&TenantId::new(bad)),
                Err(KbhError::Tenant(s)) if s == bad
            ));
        }
    }
}
