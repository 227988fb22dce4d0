//! Kaspersky Business Hub client: Endpoint Security Cloud and Security for Office 365 as
//! msp-ticketing sources.
//!
//! Business Hub publishes no REST reference, so the wire format is the project's model
//! (`business-hub-api.md` §2, **\[M\]**); every path and field name of it lives in one private
//! module so a real API can replace it in one place.
//!
//! # What it does
//! - talks HTTP(S) to Business Hub with a static API token or an e-mail/password login
//!   (re-login once on 401), TLS verification always on (optional extra CA), timeouts, paging
//!   (`limit`/`cursor`), and retries of reads on throttling (429 + `Retry-After`) and transient
//!   failures ([`KbhClient`], [`KbhConfig`], [`RetryPolicy`]);
//! - lists companies for mapping; one company is one tenant `kbh:<company id>` for both
//!   products ([`CompanyId`], [`Company`]);
//! - implements the core ports ([`KbhEventSource`], [`KbhStatusSource`]) for both products,
//!   sharing one client;
//! - keeps the server's own error (`{"error":{"code","message"}}`) and HTTP status in
//!   [`KbhError`], classified into [`ticketing_core::ports::PortError`].
//!
//! # What it does not do
//! It keeps no position and no state besides the login token: event cursors belong to the
//! daemon, which stores [`ticketing_core::ports::EventBatch::next`] once a batch is durably
//! handled. It makes no decisions about tickets.
//!
//! # Wiring
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use kbh_adapter::{KbhAuth, KbhClient, KbhConfig, KbhEventSource, KbhStatusSource};
//! use ticketing_core::ports::EventSource;
//! use ticketing_core::secret::Secret;
//!
//! let config = KbhConfig::new("http://127.0.0.1:8443", KbhAuth::Token(Secret::new("sim-token")))?;
//! let client = KbhClient::new(config)?;
//! let esc_events = KbhEventSource::endpoint_cloud(client.clone());
//! let o365_events = KbhEventSource::office365(client.clone());
//! let esc_status = KbhStatusSource::endpoint_cloud(client.clone());
//! let o365_issues = KbhStatusSource::office365(client);
//! for tenant in esc_events.tenants().await? {
//!     let batch = esc_events.poll_events(&tenant.id, None, 100, None).await?;
//!     // handle batch.events durably, then store batch.next for this tenant
//! #   let _ = batch;
//! }
//! # let _ = (o365_events, esc_status, o365_issues);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod api;
mod client;
mod config;
mod convert;
mod error;
mod sources;
mod tenant;

pub use client::{DeviceList, DeviceRecord, EventPage, IssueList, KbhClient};
pub use config::{KbhAuth, KbhConfig, RetryAction, RetryPolicy};
pub use error::KbhError;
pub use sources::{KbhEventSource, KbhStatusSource, TenantResult, cursor_seq, seq_cursor};
pub use tenant::{Company, CompanyId, TENANT_PREFIX};
