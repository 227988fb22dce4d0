//! The contract suite against every backend: Autotask through autotask-sim, ConnectWise through
//! cw-sim, HaloPSA through halo-sim.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use psa_contract::{Fault, Harness, Observed, Target, run_contract};
use serde_json::{Value, json};
use simulators::common::SimHandle;
use ticketing_core::model::PsaId;
use ticketing_core::ports::TicketSink;
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, Urgency};

const TIMEOUT: Duration = Duration::from_millis(800);

fn draft(key: &str, account: i64, status: i64, priority: i64, queue: i64) -> TicketDraft {
    TicketDraft {
        account: PsaId(account),
        title: format!("Contract ticket {key}"),
        description: format!("contract description\nmsp-ticketing key: {key}"),
        status: PsaId(status),
        priority: PsaId(priority),
        queue: PsaId(queue),
        due: Utc.with_ymd_and_hms(2030, 1, 15, 17, 0, 0).unwrap(),
        due_hours: None,
        expires_at: None,
        row: None,
        source: None,
        work_type: None,
        issue_type: None,
        sub_issue_type: None,
        idempotency_key: IdempotencyKey(key.into()),
        device_name: None,
        urgency: Urgency::Normal,
    }
}

/// What both harnesses share: the simulator, a control client, the sink.
struct Sim {
    h: SimHandle,
    c: reqwest::Client,
    sink: Arc<dyn TicketSink>,
}

/// A date-time as the simulators store it (`…Z`, with or without milliseconds).
fn time(v: &Value) -> Option<chrono::DateTime<Utc>> {
    v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

impl Sim {
    /// The simulator's row of a ticket.
    async fn row(&self, ticket: PsaId) -> Option<Value> {
        self.get("tickets").await.into_iter().find(|t| t["id"].as_i64() == Some(ticket.0))
    }

    fn control(&self, path: &str) -> String {
        format!("{}/_sim/{path}", self.h.base_url())
    }

    async fn post(&self, path: &str, body: Value) {
        let r = self.c.post(self.control(path)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200, "control {path}: {}", r.text().await.unwrap_or_default());
    }

    async fn get(&self, path: &str) -> Vec<Value> {
        self.c.get(self.control(path)).send().await.unwrap().json().await.unwrap()
    }

    async fn fault(&self, method: Option<&str>, path_regex: Option<&str>, fault: Fault, count: u32) {
        let mut spec = json!({"count": count, "method": method, "path_regex": path_regex});
        match fault {
            Fault::Status(status, retry_after) => {
                spec["status"] = json!(status);
                if let Some(s) = retry_after {
                    spec["headers"] = json!({"Retry-After": s.to_string()});
                }
            }
            Fault::Delay(d) => spec["delay_ms"] = json!(d.as_millis() as u64),
        }
        self.post("faults", spec).await;
    }

    async fn clear(&self) {
        self.c.delete(self.control("faults")).send().await.unwrap();
    }

    async fn reset(&self) {
        self.c.post(self.control("reset")).send().await.unwrap();
    }
}

// ------------------------------------------------------------------------------------------------
// Autotask
// ------------------------------------------------------------------------------------------------

struct Autotask(Sim);

impl Autotask {
    async fn start() -> Self {
        use autotask_client::{AutotaskClient, AutotaskSink, Credentials, Pacing, RetryPolicy, SinkOptions};
        use simulators::autotask::{self, DEFAULT_INTEGRATION_CODE, DEFAULT_SECRET, DEFAULT_USER};
        let h = autotask::start("127.0.0.1:0".parse().unwrap(), autotask::Config::default()).await.unwrap();
        let client = AutotaskClient::builder(Credentials::new(DEFAULT_USER, DEFAULT_SECRET, DEFAULT_INTEGRATION_CODE))
            .base_url(h.base_url())
            .retry(RetryPolicy::fast())
            .pacing(Pacing::NONE)
            .threshold_refresh(None)
            .timeout(TIMEOUT)
            .build()
            .unwrap();
        let sink =
            Arc::new(AutotaskSink::new(client, SinkOptions { closed_status: Some(5), ..SinkOptions::default() }));
        Self(Sim { h, c: reqwest::Client::new(), sink })
    }
}

#[async_trait]
impl Harness for Autotask {
    fn name(&self) -> &'static str {
        "autotask"
    }
    fn sink(&self) -> Arc<dyn TicketSink> {
        Arc::clone(&self.0.sink)
    }
    fn draft(&self, key: &str) -> TicketDraft {
        draft(key, 29_683_616, 1, 2, 29_683_482)
    }
    fn closed_status(&self) -> PsaId {
        PsaId(5)
    }
    fn accounts(&self) -> (PsaId, PsaId) {
        (PsaId(29_683_616), PsaId(29_683_617))
    }
    fn raised_priority(&self) -> PsaId {
        // the simulator's 4 Critical (the draft has 2 Medium)
        PsaId(4)
    }
    fn timeout_delay(&self) -> Duration {
        TIMEOUT * 2
    }
    async fn reset(&self) {
        self.0.reset().await;
    }
    async fn close_as_technician(&self, ticket: PsaId) {
        use simulators::autotask::{DEFAULT_INTEGRATION_CODE, DEFAULT_SECRET, DEFAULT_USER};
        let r = self
            .0
            .c
            .patch(format!("{}/ATServicesRest/V1.0/Tickets", self.0.h.base_url()))
            .header("UserName", DEFAULT_USER)
            .header("Secret", DEFAULT_SECRET)
            .header("ApiIntegrationCode", DEFAULT_INTEGRATION_CODE)
            .json(&json!({"id": ticket.0, "status": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    async fn delete_ticket(&self, _ticket: PsaId) -> bool {
        // Autotask's REST API has no ticket delete
        false
    }
    async fn inject(&self, target: Target, fault: Fault, count: u32) {
        match target {
            Target::Any => self.0.fault(None, None, fault, count).await,
            Target::Create => self.0.fault(Some("POST"), Some("(?i)/tickets$"), fault, count).await,
        }
    }
    async fn lose_next_create_answer(&self) -> bool {
        false
    }
    async fn clear_faults(&self) {
        self.0.clear().await;
    }
    async fn tickets_with_key(&self, key: &str) -> usize {
        self.0.get("tickets").await.iter().filter(|t| t["externalID"].as_str() == Some(key)).count()
    }
    async fn notes_containing(&self, ticket: PsaId, text: &str) -> usize {
        self.0
            .get("notes")
            .await
            .iter()
            .filter(|n| n["ticketID"].as_i64() == Some(ticket.0))
            .filter(|n| n["description"].as_str().is_some_and(|d| d.contains(text)))
            .count()
    }
    async fn observe(&self, ticket: PsaId) -> Option<Observed> {
        let t = self.0.row(ticket).await?;
        Some(Observed {
            status: PsaId(t["status"].as_i64()?),
            priority: PsaId(t["priority"].as_i64()?),
            due: time(&t["dueDateTime"]),
            closed: !t["completedDate"].is_null(),
        })
    }
}

// ------------------------------------------------------------------------------------------------
// ConnectWise
// ------------------------------------------------------------------------------------------------

struct ConnectWise(Sim);

impl ConnectWise {
    async fn start() -> Self {
        use connectwise_client::{ConnectWiseClient, ConnectWiseSink, Credentials, RetryPolicy, SinkOptions};
        use simulators::connectwise::{self, DEFAULT_COMPANY, DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY};
        let h = connectwise::start("127.0.0.1:0".parse().unwrap(), connectwise::Config::default()).await.unwrap();
        let client =
            ConnectWiseClient::builder(Credentials::new(DEFAULT_COMPANY, DEFAULT_PUBLIC_KEY, DEFAULT_PRIVATE_KEY))
                .base_url(h.base_url())
                .retry(RetryPolicy::fast())
                .timeout(TIMEOUT)
                .build()
                .unwrap();
        let sink = Arc::new(ConnectWiseSink::new(client, SinkOptions::default()));
        Self(Sim { h, c: reqwest::Client::new(), sink })
    }
}

#[async_trait]
impl Harness for ConnectWise {
    fn name(&self) -> &'static str {
        "connectwise"
    }
    fn sink(&self) -> Arc<dyn TicketSink> {
        Arc::clone(&self.0.sink)
    }
    fn draft(&self, key: &str) -> TicketDraft {
        let mut d = draft(key, 19300, 10, 2, 1);
        d.issue_type = Some(PsaId(100));
        d.sub_issue_type = Some(PsaId(110));
        d.work_type = Some(PsaId(120));
        d.source = Some(PsaId(3));
        d
    }
    fn closed_status(&self) -> PsaId {
        PsaId(12)
    }
    fn accounts(&self) -> (PsaId, PsaId) {
        (PsaId(19300), PsaId(19301))
    }
    fn raised_priority(&self) -> PsaId {
        // the simulator's 1 Critical (the draft has 2 High)
        PsaId(1)
    }
    fn timeout_delay(&self) -> Duration {
        TIMEOUT * 2
    }
    async fn reset(&self) {
        self.0.reset().await;
    }
    async fn close_as_technician(&self, ticket: PsaId) {
        self.0.post(&format!("tickets/{}/status", ticket.0), json!({"status": 12})).await;
    }
    async fn delete_ticket(&self, ticket: PsaId) -> bool {
        let r = self.0.c.delete(self.0.control(&format!("tickets/{}", ticket.0))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        true
    }
    async fn inject(&self, target: Target, fault: Fault, count: u32) {
        match target {
            Target::Any => self.0.fault(None, None, fault, count).await,
            Target::Create => self.0.fault(Some("POST"), Some("(?i)/service/tickets$"), fault, count).await,
        }
    }
    async fn lose_next_create_answer(&self) -> bool {
        self.0
            .post("lose_answers", json!({"method": "POST", "path_regex": "(?i)/service/tickets$", "status": 504}))
            .await;
        true
    }
    async fn clear_faults(&self) {
        self.0.clear().await;
    }
    async fn tickets_with_key(&self, key: &str) -> usize {
        self.0.get("tickets").await.iter().filter(|t| t["externalXRef"].as_str() == Some(key)).count()
    }
    async fn notes_containing(&self, ticket: PsaId, text: &str) -> usize {
        self.0
            .get("notes")
            .await
            .iter()
            .filter(|n| n["ticketId"].as_i64() == Some(ticket.0))
            .filter(|n| n["text"].as_str().is_some_and(|d| d.contains(text)))
            .count()
    }
    async fn observe(&self, ticket: PsaId) -> Option<Observed> {
        let t = self.0.row(ticket).await?;
        Some(Observed {
            status: PsaId(t["status"]["id"].as_i64()?),
            priority: PsaId(t["priority"]["id"].as_i64()?),
            due: time(&t["requiredDate"]),
            closed: t["closedFlag"].as_bool()?,
        })
    }
}

// ------------------------------------------------------------------------------------------------
// HaloPSA
// ------------------------------------------------------------------------------------------------

struct Halo(Sim);

impl Halo {
    async fn start() -> Self {
        use halopsa_client::{Credentials, HaloClient, HaloSink, RetryPolicy, SinkOptions};
        use simulators::halo::{self, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
        let h = halo::start("127.0.0.1:0".parse().unwrap(), halo::Config::default()).await.unwrap();
        let client = HaloClient::builder(Credentials::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET))
            .base_url(h.base_url())
            .retry(RetryPolicy::fast())
            .timeout(TIMEOUT)
            .build()
            .unwrap();
        let sink = Arc::new(HaloSink::new(client, SinkOptions::default()));
        Self(Sim { h, c: reqwest::Client::new(), sink })
    }
}

#[async_trait]
impl Harness for Halo {
    fn name(&self) -> &'static str {
        "halopsa"
    }
    fn sink(&self) -> Arc<dyn TicketSink> {
        Arc::clone(&self.0.sink)
    }
    fn draft(&self, key: &str) -> TicketDraft {
        // Acme Corp, status New, priority Medium, team Monitoring Alert, ticket type Security
        let mut d = draft(key, 12, 1, 3, 1);
        d.issue_type = Some(PsaId(21));
        d
    }
    fn closed_status(&self) -> PsaId {
        PsaId(simulators::halo::CLOSED_STATUS)
    }
    fn accounts(&self) -> (PsaId, PsaId) {
        (PsaId(12), PsaId(13))
    }
    fn raised_priority(&self) -> PsaId {
        // the simulator's 1 Critical (the draft has 3 Medium)
        PsaId(1)
    }
    fn timeout_delay(&self) -> Duration {
        TIMEOUT * 2
    }
    async fn reset(&self) {
        self.0.reset().await;
    }
    async fn close_as_technician(&self, ticket: PsaId) {
        self.0.post(&format!("tickets/{}/status", ticket.0), json!({"status": simulators::halo::CLOSED_STATUS})).await;
    }
    async fn delete_ticket(&self, ticket: PsaId) -> bool {
        let r = self.0.c.delete(self.0.control(&format!("tickets/{}", ticket.0))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        true
    }
    async fn inject(&self, target: Target, fault: Fault, count: u32) {
        match target {
            Target::Any => self.0.fault(None, None, fault, count).await,
            Target::Create => self.0.fault(Some("POST"), Some("(?i)/api/tickets$"), fault, count).await,
        }
    }
    async fn lose_next_create_answer(&self) -> bool {
        self.0.post("lose_answers", json!({"method": "POST", "path_regex": "(?i)/api/tickets$", "status": 504})).await;
        true
    }
    async fn clear_faults(&self) {
        self.0.clear().await;
    }
    async fn tickets_with_key(&self, key: &str) -> usize {
        let line = format!("msp-ticketing ref: {key}");
        self.0
            .get("tickets")
            .await
            .iter()
            .filter(|t| t["details"].as_str().is_some_and(|d| d.split("<br>").any(|l| l.trim() == line)))
            .count()
    }
    async fn notes_containing(&self, ticket: PsaId, text: &str) -> usize {
        self.0
            .get("actions")
            .await
            .iter()
            .filter(|n| n["ticket_id"].as_i64() == Some(ticket.0))
            .filter(|n| n["note"].as_str().is_some_and(|d| d.contains(text)))
            .count()
    }
    async fn observe(&self, ticket: PsaId) -> Option<Observed> {
        let t = self.0.row(ticket).await?;
        let status = t["status_id"].as_i64()?;
        Some(Observed {
            status: PsaId(status),
            priority: PsaId(t["priority_id"].as_i64()?),
            due: time(&t["fixbydate"]),
            closed: status == simulators::halo::CLOSED_STATUS,
        })
    }
}

#[tokio::test]
async fn autotask_meets_the_contract() {
    run_contract(&Autotask::start().await).await;
}

#[tokio::test]
async fn connectwise_meets_the_contract() {
    run_contract(&ConnectWise::start().await).await;
}

#[tokio::test]
async fn halopsa_meets_the_contract() {
    run_contract(&Halo::start().await).await;
}
