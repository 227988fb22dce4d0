//! Wire costs: building request bodies and parsing a 500-row ticket page.
//!
//! `cargo bench -p autotask-client --bench wire -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use autotask_client::models::Ticket;
use autotask_client::query::{Filter, Query};
use autotask_client::sink::draft_to_ticket;
use autotask_client::{parse_ticket_page, ticket_body};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use ticketing_core::model::PsaId;
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, Urgency};

fn draft() -> TicketDraft {
    TicketDraft {
        account: PsaId(29683616),
        title: "Kaspersky: Critical status on PC-0042: Real-time protection is off".into(),
        description: "Device PC-0042 (10.0.0.42) reports: Real-time protection is off.\nGroup: Managed devices"
            .repeat(4),
        status: PsaId(1),
        priority: PsaId(4),
        queue: PsaId(29683482),
        due: Utc.with_ymd_and_hms(2030, 1, 15, 17, 0, 0).unwrap(),
        due_hours: None,
        expires_at: None,
        row: None,
        source: Some(PsaId(8)),
        work_type: Some(PsaId(29682801)),
        issue_type: Some(PsaId(10)),
        sub_issue_type: Some(PsaId(101)),
        idempotency_key: IdempotencyKey("kmsp-0123456789abcdef0123456789abcdef-1".into()),
        device_name: Some("PC-0042".into()),
        urgency: Urgency::Critical,
    }
}

fn page_of(n: i64) -> String {
    let items: Vec<_> = (1..=n)
        .map(|i| {
            json!({
                "id": 128_000 + i, "ticketNumber": format!("T20300115.{i:04}"), "companyID": 29683616,
                "title": format!("Kaspersky: Critical status on PC-{i:04}"), "description": "Real-time protection is off. ".repeat(6),
                "status": 1, "priority": 4, "queueID": 29683482, "dueDateTime": "2030-01-15T17:00:00Z", "source": 8,
                "issueType": 10, "subIssueType": 101, "billingCodeID": 29682801, "externalID": format!("kmsp-{i:032x}-1"),
                "ticketType": 5, "ticketCategory": 3, "createDate": "2030-01-15T13:00:00.123Z",
                "lastActivityDate": "2030-01-15T13:00:00.123", "completedDate": null, "assignedResourceID": null,
                "contractID": null, "serviceLevelAgreementID": null, "estimatedHours": 0.0, "isVisibleToComanaged": false,
                "userDefinedFields": [{"name": "External Reference", "value": null}]
            })
        })
        .collect();
    json!({"items": items, "pageDetails": {"count": n, "requestCount": 500, "prevPageUrl": null, "nextPageUrl": null}})
        .to_string()
}

fn bench(c: &mut Criterion) {
    let d = draft();
    c.bench_function("build_create_body", |b| b.iter(|| ticket_body(&draft_to_ticket(black_box(&d)))));
    c.bench_function("build_query_body", |b| {
        b.iter(|| {
            Query::new()
                .filter(Filter::eq("externalID", black_box("kmsp-0123456789abcdef0123456789abcdef-1")))
                .max_records(1)
                .build()
                .map(|q| q.to_bytes())
        })
    });
    let page = page_of(500);
    let mut g = c.benchmark_group("parse_ticket_page");
    g.throughput(Throughput::Elements(500));
    g.bench_function("500_rows", |b| {
        b.iter(|| {
            let p = parse_ticket_page(black_box(&page)).unwrap();
            assert_eq!(p.items.len(), 500);
            p
        })
    });
    g.finish();
    let one = serde_json::to_string(&Ticket { id: Some(1), status: Some(1), ..Ticket::default() }).unwrap();
    c.bench_function("parse_item_envelope", |b| {
        b.iter(|| {
            serde_json::from_str::<autotask_client::models::ItemEnvelope<Ticket>>(black_box(&format!(
                "{{\"item\":{one}}}"
            )))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
