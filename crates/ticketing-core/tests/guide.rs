//! The product guide (`shared/seed/ticketing-settings-guide.txt`), rule by rule. Each test
//! quotes the sentence it checks.

mod support;

use chrono::Duration;
use support::*;
use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::decide::{Action, EventDecision, SkipReason, decide_event, reconcile};
use ticketing_core::edit::{GeneralPatch, RuleBook, RulePatch};
use ticketing_core::ledger::{ClosedBy, Ledger, TicketState, Transition};
use ticketing_core::model::*;
use ticketing_core::rules::{GeneralSettings, Problem, RowId, RuleSet, Section};
use ticketing_core::ticket::{TicketKey, TicketRef};

/// Every default of the guide, as a table: (row, lifetime, queue, priority, due hours).
#[test]
fn every_default_of_the_guide() {
    use EventClass::{Office365 as O, Severity as S};
    use Product::*;
    use StatusLevel::{Critical as SC, Warning as SW};
    let dbs = desc("databases_out_of_date");
    let table: Vec<(RowId, Option<u32>, &str, &str, u32)> = vec![
        // "The default priority for Critical events is Critical, and for Warning and Functional
        // Failure events it is Medium." "The default value is 1 day." "The default value is 12 hours."
        (RowId::Event(SecurityCenter, S(Severity::Critical)), Some(1), "Monitoring Alert", "Critical", 12),
        (RowId::Event(SecurityCenter, S(Severity::FunctionalFailure)), Some(1), "Monitoring Alert", "Medium", 12),
        (RowId::Event(SecurityCenter, S(Severity::Warning)), Some(1), "Monitoring Alert", "Medium", 12),
        (RowId::Event(EndpointCloud, S(Severity::Critical)), Some(1), "Monitoring Alert", "Critical", 12),
        (RowId::Event(EndpointCloud, S(Severity::FunctionalFailure)), Some(1), "Monitoring Alert", "Medium", 12),
        (RowId::Event(EndpointCloud, S(Severity::Warning)), Some(1), "Monitoring Alert", "Medium", 12),
        // "The default priority for all events that occur in Kaspersky Security for Microsoft
        // Office 365 is Critical." Lifetime: "This setting is not present for events that occur in
        // Kaspersky Security for Microsoft Office 365."
        (
            RowId::Event(Office365, O(Office365EventType::MailboxesProtectionNotProvided)),
            None,
            "Monitoring Alert",
            "Critical",
            12,
        ),
        (RowId::Event(Office365, O(Office365EventType::LicenseIssue)), None, "Monitoring Alert", "Critical", 12),
        (RowId::Event(Office365, O(Office365EventType::MalwareDetected)), None, "Monitoring Alert", "Critical", 12),
        (RowId::Event(Office365, O(Office365EventType::PhishingDetected)), None, "Monitoring Alert", "Critical", 12),
        (
            RowId::Event(Office365, O(Office365EventType::FilteredAttachmentDetected)),
            None,
            "Monitoring Alert",
            "Critical",
            12,
        ),
        // "The default priority for Critical computer statuses is Critical, and for Warning
        // computer statuses it is Medium." "The default value for Critical computer statuses is
        // 12 hours, and for Warning computer statuses it is 24 hours."
        (RowId::Status(SecurityCenter, SC, dbs.clone()), None, "Monitoring Alert", "Critical", 12),
        (RowId::Status(SecurityCenter, SW, dbs.clone()), None, "Monitoring Alert", "Medium", 24),
        (RowId::Status(EndpointCloud, SC, dbs.clone()), None, "Monitoring Alert", "Critical", 12),
        (RowId::Status(EndpointCloud, SW, dbs), None, "Monitoring Alert", "Medium", 24),
    ];
    let rules = RuleSet::default();
    for (row, lifetime, queue, priority, due) in table {
        let rule = rules.rule(&row).unwrap_or_else(|| panic!("row {row} missing"));
        // "By default, ticketing is disabled for all event severities and event types."
        // "By default, ticket creation is disabled for all computer status descriptions."
        assert!(!rule.enabled, "{row}");
        assert_eq!(rule.lifetime_days, lifetime, "{row}");
        assert_eq!(rule.queue.as_deref(), Some(queue), "{row}");
        assert_eq!(rule.priority.as_deref(), Some(priority), "{row}");
        assert_eq!(rule.due_hours, due, "{row}");
        assert_eq!(
            (rule.work_type.as_ref(), rule.issue_type.as_ref(), rule.sub_issue_type.as_ref()),
            (None, None, None)
        );
    }
    // General: "By default, these tickets are assigned the New status." "By default, these
    // tickets are assigned the Complete status." Ticket source: "This value is optional".
    assert_eq!(
        rules.general,
        GeneralSettings { ticket_source: None, new_status: Some("New".into()), closed_status: Some("Complete".into()) }
    );
    // Every row of every table exists: 3 + 3 severities, 5 Office 365 types, 20 Security Center
    // and 9 Endpoint Security Cloud descriptions under each of Warning and Critical.
    assert_eq!(rules.rows.len(), 3 + 3 + 5 + 2 * 20 + 2 * 9);
    assert!(rules.rows.values().all(|r| !r.enabled));
    assert!(rules.validate(&Catalog::example()).is_empty());
}

#[test]
fn row_and_section_names_round_trip() {
    for section in Section::all() {
        assert_eq!(section.to_string().parse::<Section>().unwrap(), section);
        for row in section.rows() {
            assert_eq!(row.to_string().parse::<RowId>().unwrap(), row);
            assert_eq!(row.section(), section);
        }
    }
    assert!("office365/event/critical".parse::<RowId>().is_err());
    assert!("security_center/event/malware_detected".parse::<RowId>().is_err());
    assert!("security_center/event/info".parse::<RowId>().is_err(), "Info has no rule row");
    assert!("endpoint_cloud/status/warning/network_agent_inactive".parse::<RowId>().is_err());
    let json = serde_json::to_string(&RuleSet::default()).unwrap();
    assert_eq!(serde_json::from_str::<RuleSet>(&json).unwrap(), RuleSet::default());
}

/// "If one of these basic priority values is deleted in Autotask, the default value is blank.
/// This setting is required."
#[test]
fn a_deleted_priority_is_blank_and_an_enabled_row_fails_naming_product_row_and_field() {
    let mut catalog = Catalog::example();
    catalog.priorities.retain(|p| p.label != "Critical");
    assert_eq!(catalog.display(Field::Priority, Some("Critical")), None, "shown as blank");
    assert_eq!(catalog.display(Field::Priority, Some("medium")).as_deref(), Some("Medium"));

    let mut rules = RuleSet::default();
    assert!(rules.validate(&catalog).is_empty(), "disabled rules never fail");
    let row = sev(Product::SecurityCenter, Severity::Critical);
    rules.rows.get_mut(&row).unwrap().enabled = true;
    let errors = rules.validate(&catalog);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].row.as_ref(), Some(&row));
    assert_eq!(errors[0].field, Field::Priority);
    assert_eq!(errors[0].problem, Problem::NotInPsa { label: "Critical".into() });
    let msg = errors[0].to_string();
    assert!(msg.contains("Kaspersky Security Center") && msg.contains("Critical") && msg.contains("priority"), "{msg}");

    // An inactive value is as good as deleted.
    let mut inactive = Catalog::example();
    for q in &mut inactive.queues {
        q.active = false;
    }
    assert_eq!(rules.validate(&inactive)[0].field, Field::Queue);

    // And the event is not ticketed: the skip names the problem.
    let ctx = ctx_with(&rules, &catalog);
    let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::hours(1));
    match decide_event(&ev, &ctx, &Ledger::new(), now()) {
        EventDecision::Skip { reason: SkipReason::RuleInvalid { errors }, .. } => {
            assert_eq!(errors[0].field, Field::Priority)
        }
        other => panic!("{other:?}"),
    }
}

/// New and closed status are required; the ticket source is optional; a sub-issue type must
/// belong to its issue type.
#[test]
fn general_settings_and_sub_issue_validation() {
    let catalog = Catalog::example();
    let mut rules = RuleSet::default();
    rules.general.new_status = None;
    rules.general.ticket_source = Some("Monitoring Alert".into());
    let errors = rules.validate(&catalog);
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].field, &errors[0].problem), (Field::NewStatus, &Problem::Blank));
    assert_eq!(errors[0].to_string(), "general settings: new_status is blank but required");

    let mut rules = all_on();
    let row = sev(Product::EndpointCloud, Severity::Warning);
    let r = rules.rows.get_mut(&row).unwrap();
    r.issue_type = Some("Hardware".into());
    r.sub_issue_type = Some("Malware".into()); // belongs to "Security"
    let errors = rules.validate(&catalog);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].field, &errors[0].problem), (Field::SubIssueType, &Problem::NotOfIssueType));
    rules.rows.get_mut(&row).unwrap().issue_type = Some("Security".into());
    assert!(rules.validate(&catalog).is_empty());
}

/// "select the lines that contain required event severities, and then click the Edit button"
/// "Editing ticketing settings for multiple event severities is useful if you want to assign the
/// same settings" — fields the patch leaves out stay as they are.
#[test]
fn bulk_edit_applies_one_patch_to_the_selected_rows_only() {
    let mut book = RuleBook::default();
    let rows = [
        sev(Product::SecurityCenter, Severity::Critical),
        sev(Product::SecurityCenter, Severity::Warning),
        sev(Product::SecurityCenter, Severity::FunctionalFailure),
    ];
    let patch: RulePatch =
        serde_json::from_str(r#"{"enabled":true,"queue":"Client Portal","issue_type":"Security","lifetime_days":3}"#)
            .unwrap();
    book.bulk_edit(&rows[..2], &patch).unwrap();
    for row in &rows[..2] {
        let r = book.draft.rule(row).unwrap();
        assert!(r.enabled);
        assert_eq!(r.queue.as_deref(), Some("Client Portal"));
        assert_eq!(r.issue_type.as_deref(), Some("Security"));
        assert_eq!(r.lifetime_days, Some(3));
        assert_eq!(r.due_hours, 12, "untouched field kept");
    }
    assert_eq!(book.draft.rule(&rows[0]).unwrap().priority.as_deref(), Some("Critical"));
    assert_eq!(book.draft.rule(&rows[1]).unwrap().priority.as_deref(), Some("Medium"));
    assert_eq!(book.draft.rule(&rows[2]).unwrap(), &rows[2].default_rule(), "unselected row untouched");
    assert!(book.saved == RuleSet::default(), "edits go to the draft");

    // null clears an optional field
    let clear: RulePatch = serde_json::from_str(r#"{"issue_type":null}"#).unwrap();
    book.bulk_edit(&rows[..1], &clear).unwrap();
    assert_eq!(book.draft.rule(&rows[0]).unwrap().issue_type, None);

    // Lifetime does not exist for Office 365 rows: refused, nothing changed.
    let o365 = RowId::Event(Product::Office365, EventClass::Office365(Office365EventType::MalwareDetected));
    let before = book.draft.clone();
    let err = book.bulk_edit(&[rows[2].clone(), o365], &RulePatch { lifetime_days: Some(2), ..Default::default() });
    assert!(err.unwrap_err().to_string().contains("lifetime_days does not apply"));
    assert_eq!(book.draft, before);
    let err = book.bulk_edit(&rows, &RulePatch { due_hours: Some(0), ..Default::default() }).unwrap_err();
    assert!(err.to_string().contains("due_hours must be between 1 and 8760"), "{err}");
}

/// "click the Save changes button", "Cancel changes ... restore last saved values", "Reset to
/// defaults".
#[test]
fn save_cancel_and_reset_work_per_section() {
    let catalog = Catalog::example();
    let mut book = RuleBook::default();
    let ksc = Section::Events(Product::SecurityCenter);
    let crit = sev(Product::SecurityCenter, Severity::Critical);
    let warn_row = RowId::Status(Product::SecurityCenter, StatusLevel::Warning, desc("databases_out_of_date"));
    book.bulk_edit(
        std::slice::from_ref(&crit),
        &RulePatch { enabled: Some(true), due_hours: Some(4), ..Default::default() },
    )
    .unwrap();
    book.bulk_edit(std::slice::from_ref(&warn_row), &RulePatch { enabled: Some(true), ..Default::default() }).unwrap();
    assert!(book.is_dirty(ksc));
    book.save(ksc, &catalog).unwrap();
    assert!(!book.is_dirty(ksc));
    assert_eq!(book.saved.rule(&crit).unwrap().due_hours, 4);
    assert!(!book.saved.rule(&warn_row).unwrap().enabled, "other sections are not saved with it");
    assert!(book.is_dirty(warn_row.section()));

    // cancel: back to last saved
    book.bulk_edit(std::slice::from_ref(&crit), &RulePatch { due_hours: Some(99), ..Default::default() }).unwrap();
    book.cancel(ksc);
    assert_eq!(book.draft.rule(&crit).unwrap().due_hours, 4);

    // reset: defaults into the draft; cancellable; saved only on save
    book.reset(ksc);
    assert_eq!(book.draft.rule(&crit).unwrap(), &crit.default_rule());
    assert_eq!(book.saved.rule(&crit).unwrap().due_hours, 4);
    book.cancel(ksc);
    assert_eq!(book.draft.rule(&crit).unwrap().due_hours, 4);
    book.reset(ksc);
    book.save(ksc, &catalog).unwrap();
    assert_eq!(book.saved.rule(&crit).unwrap(), &crit.default_rule());

    // General section
    book.edit_general(&GeneralPatch { closed_status: Some(Some("In Progress".into())), ..Default::default() });
    book.save(Section::General, &catalog).unwrap();
    assert_eq!(book.saved.general.closed_status.as_deref(), Some("In Progress"));
    book.reset(Section::General);
    assert_eq!(book.draft.general, GeneralSettings::default());

    // A save with problems is refused with all of them, naming the field.
    book.edit_general(&GeneralPatch {
        new_status: Some(None),
        closed_status: Some(Some("Gone".into())),
        ..Default::default()
    });
    let err = book.save(Section::General, &catalog).unwrap_err();
    assert_eq!(err.errors.len(), 2);
    assert!(err.to_string().contains("new_status is blank") && err.to_string().contains("closed_status \"Gone\""));
    assert_eq!(book.saved.general.closed_status.as_deref(), Some("In Progress"), "refused save changes nothing");
}

/// "The default value is 1 day. ... only events more recent than the specified period are sent
/// to Autotask as tickets."
#[test]
fn lifetime_decides_staleness_and_office365_has_none() {
    let ctx = ctx(&all_on());
    let crit = EventClass::Severity(Severity::Critical);
    let fresh = event(Product::SecurityCenter, crit, Duration::hours(23));
    assert!(matches!(decide_event(&fresh, &ctx, &Ledger::new(), now()), EventDecision::Create(_)));
    let stale = event(Product::SecurityCenter, crit, Duration::hours(25));
    assert_eq!(
        decide_event(&stale, &ctx, &Ledger::new(), now()),
        EventDecision::Skip {
            key: ticketing_core::decide::event_key(&stale),
            reason: SkipReason::Stale { lifetime_days: 1 }
        }
    );
    // Office 365: no lifetime, a week-old event is still ticketed.
    let old = event(Product::Office365, EventClass::Office365(Office365EventType::PhishingDetected), Duration::days(7));
    assert!(matches!(decide_event(&old, &ctx, &Ledger::new(), now()), EventDecision::Create(_)));
}

/// "Kaspersky Security Integration Service for MSP can create tickets only for active Autotask
/// accounts." Unmapped tenants get nothing either.
#[test]
fn only_mapped_active_accounts_get_tickets() {
    let ctx = ctx(&all_on());
    let mut ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Warning), Duration::minutes(5));
    ev.tenant = TenantId::new("ksc:main/vs:404");
    assert!(matches!(
        decide_event(&ev, &ctx, &Ledger::new(), now()),
        EventDecision::Skip { reason: SkipReason::TenantUnmapped, .. }
    ));
    ev.tenant = TenantId::new("ksc:main/vs:9");
    assert!(matches!(
        decide_event(&ev, &ctx, &Ledger::new(), now()),
        EventDecision::Skip { reason: SkipReason::AccountInactive { account: OLD_CO }, .. }
    ));
    // The same for status tickets.
    let mut snap = snapshot(vec![device_status("h1", &[("license_expired", StatusLevel::Critical)])]);
    snap.tenant = TenantId::new("ksc:main/vs:9");
    let rec = reconcile(&snap, &ctx, &Ledger::new(), now());
    assert!(rec.actions.is_empty());
    assert_eq!(rec.skipped.len(), 1);
    assert_eq!(rec.skipped[0].1.label(), "account_inactive");
}

/// Rules are per severity, and a disabled row or an Info event is never ticketed; the draft
/// carries the row's queue, priority and due time and the general settings' status and source.
#[test]
fn event_drafts_follow_their_row() {
    let catalog = Catalog::example();
    let mut rules = RuleSet::default();
    rules.general.ticket_source = Some("Phone".into());
    let row = sev(Product::EndpointCloud, Severity::FunctionalFailure);
    let r = rules.rows.get_mut(&row).unwrap();
    r.enabled = true;
    r.due_hours = 6;
    r.work_type = Some("Remote Support".into());
    r.issue_type = Some("Hardware".into());
    r.sub_issue_type = Some("Disk".into());
    let ctx = ctx_with(&rules, &catalog);
    let ev = event(Product::EndpointCloud, EventClass::Severity(Severity::FunctionalFailure), Duration::hours(1));
    let EventDecision::Create(c) = decide_event(&ev, &ctx, &Ledger::new(), now()) else { panic!() };
    let d = &c.draft;
    assert_eq!((d.account, d.status, d.priority, d.queue), (ACME, PsaId(1), PsaId(2), PsaId(8)));
    assert_eq!(
        (d.source, d.work_type, d.issue_type, d.sub_issue_type),
        (Some(PsaId(2)), Some(PsaId(29682801)), Some(PsaId(11)), Some(PsaId(111)))
    );
    assert_eq!(d.due, now() + Duration::hours(6));
    assert_eq!(d.idempotency_key, c.key.idempotency_key(1));
    // Warning row is off: skipped. Info has no row: skipped.
    for s in [Severity::Warning, Severity::Info] {
        let ev = event(Product::EndpointCloud, EventClass::Severity(s), Duration::hours(1));
        assert!(matches!(
            decide_event(&ev, &ctx, &Ledger::new(), now()),
            EventDecision::Skip { reason: SkipReason::RuleOff, .. }
        ));
    }
    // A long description is cut to Autotask's limits on a char boundary.
    let mut long = ev;
    long.class = EventClass::Severity(Severity::FunctionalFailure);
    long.text = "ü".repeat(9000);
    long.display_name = "ß".repeat(400);
    let EventDecision::Create(c) = decide_event(&long, &ctx, &Ledger::new(), now()) else { panic!() };
    assert_eq!(c.draft.title.chars().count(), 255);
    assert_eq!(c.draft.description.chars().count(), 8000);
}

/// An event already ticketed is not ticketed again (re-delivery after a restart).
#[test]
fn an_event_is_ticketed_once() {
    let ctx = ctx(&all_on());
    let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::hours(1));
    let mut ledger = Ledger::new();
    let EventDecision::Create(c) = decide_event(&ev, &ctx, &ledger, now()) else { panic!() };
    ledger.apply(&c.transition(), now()).unwrap();
    assert!(matches!(
        decide_event(&ev, &ctx, &ledger, now()),
        EventDecision::Skip { reason: SkipReason::AlreadyTicketed, .. }
    ));
}

fn apply_all(ledger: &mut Ledger, actions: &[Action]) {
    for (i, a) in actions.iter().enumerate() {
        ledger.apply(&a.transition(), now()).unwrap();
        let key = a.transition().key().clone();
        let follow = match a {
            Action::Create(_) => {
                Transition::Opened { key: key.clone(), ticket: TicketRef { id: PsaId(1000 + i as i64), number: None } }
            }
            Action::Close(_) => Transition::Closed { key: key.clone() },
            Action::Clear { .. } | Action::Delay { .. } | Action::DelayCleared { .. } => continue,
            Action::Reopen(_) | Action::Update(_) => Transition::Updated { key: key.clone() },
            Action::Storm(_) | Action::OpenStorm(_) | Action::StormCleared(_) => unreachable!("storms are off here"),
        };
        ledger.apply(&follow, now()).unwrap();
        // The close note lands too (it is outbox work of its own).
        if matches!(a, Action::Close(_)) {
            ledger.apply(&Transition::NoteAdded { key }, now()).unwrap();
        }
    }
}

/// The guide's example: "when a computer's status becomes Warning because a 'Databases are out
/// of date' status description is assigned, a corresponding ticket is created. When the
/// databases are updated ... the ticket is automatically closed. However, the computer status
/// might remain Warning because of other status descriptions, for example, 'Many viruses
/// detected'."
#[test]
fn the_guides_example_databases_clear_while_viruses_keep_the_computer_warning() {
    use StatusLevel::Warning as W;
    let ctx = ctx(&all_on());
    let mut ledger = Ledger::new();
    let both = snapshot(vec![device_status("pc", &[("databases_out_of_date", W), ("many_viruses_detected", W)])]);
    let rec = reconcile(&both, &ctx, &ledger, now());
    assert_eq!(rec.actions.len(), 2);
    assert!(rec.actions.iter().all(
        |a| matches!(a, Action::Create(c) if c.draft.priority == PsaId(2) && c.draft.due == now() + Duration::hours(24))
    ));
    apply_all(&mut ledger, &rec.actions);

    let viruses_only = snapshot(vec![device_status("pc", &[("many_viruses_detected", W)])]);
    assert_eq!(viruses_only.devices[0].status, ComputerStatus::Warning, "the computer stays Warning");
    let rec = reconcile(&viruses_only, &ctx, &ledger, now());
    assert_eq!(rec.actions.len(), 1);
    let Action::Close(close) = &rec.actions[0] else { panic!("{rec:?}") };
    assert!(
        matches!(&close.key, TicketKey::Status { description, .. } if *description == desc("databases_out_of_date"))
    );
    assert_eq!(close.status, PsaId(5), "the closed status: Complete");
    apply_all(&mut ledger, &rec.actions);
    let viruses = TicketKey::Status {
        product: Product::SecurityCenter,
        tenant: tenant(),
        device: DeviceId::new("pc"),
        description: desc("many_viruses_detected"),
    };
    assert!(matches!(ledger.get(&viruses).unwrap().state, TicketState::Open { .. }), "its ticket stays open");
    assert!(reconcile(&viruses_only, &ctx, &ledger, now()).actions.is_empty(), "steady state: nothing to do");

    // The databases go out of date again: a new ticket, a new generation, a new idempotency key.
    let rec = reconcile(&both, &ctx, &ledger, now());
    let [Action::Create(c)] = rec.actions.as_slice() else { panic!("{rec:?}") };
    assert_eq!(c.generation, 2);
    // A device that disappears from the snapshot has no active description any more.
    apply_all(&mut ledger, &rec.actions);
    let rec = reconcile(&snapshot(vec![]), &ctx, &ledger, now());
    assert_eq!(rec.actions.iter().filter(|a| matches!(a, Action::Close(_))).count(), 2);
}

/// Invariant 4: "a ticket closed by a technician is not re-created while the condition persists".
#[test]
fn a_ticket_a_technician_closed_is_not_recreated_while_the_condition_persists() {
    use StatusLevel::Critical as C;
    let ctx = ctx(&all_on());
    let mut ledger = Ledger::new();
    let snap = snapshot(vec![device_status("pc", &[("license_expired", C)])]);
    let rec = reconcile(&snap, &ctx, &ledger, now());
    apply_all(&mut ledger, &rec.actions);
    let key = rec.actions[0].transition().key().clone();
    ledger.apply(&Transition::ClosedByTechnician { key: key.clone() }, now()).unwrap();
    assert!(reconcile(&snap, &ctx, &ledger, now()).actions.is_empty());
    // it clears, is marked cleared, and a later occurrence is ticketed again
    let rec = reconcile(&snapshot(vec![device_status("pc", &[])]), &ctx, &ledger, now());
    assert_eq!(rec.actions, vec![Action::Clear { key: key.clone() }]);
    apply_all(&mut ledger, &rec.actions);
    assert!(matches!(
        ledger.get(&key).unwrap().state,
        TicketState::Closed { by: ClosedBy::Technician, cleared: true, .. }
    ));
    let rec = reconcile(&snap, &ctx, &ledger, now());
    assert!(matches!(rec.actions.as_slice(), [Action::Create(c)] if c.generation == 2));
}

/// "Tickets created on the basis of events Mailboxes protection is not provided and
/// License-related issue occurred ... are also closed when the corresponding issue is
/// resolved." "Tickets created on the basis of all other events ... are not closed
/// automatically".
#[test]
fn only_the_two_resolvable_office365_types_close_on_their_resolved_signal() {
    let ctx = ctx(&all_on());
    let mut ledger = Ledger::new();
    let tenant = TenantId::new("kbh:c-1");
    for (i, t) in Office365EventType::ALL.into_iter().enumerate() {
        let mut ev = event(Product::Office365, EventClass::Office365(t), Duration::minutes(1));
        ev.source_id = SourceEventId::new(format!("m-{i}"));
        let EventDecision::Create(c) = decide_event(&ev, &ctx, &ledger, now()) else { panic!("{t:?}") };
        assert_eq!(c.draft.priority, PsaId(4), "every Office 365 type defaults to Critical");
        ledger.apply(&c.transition(), now()).unwrap();
        ledger
            .apply(&Transition::Opened { key: c.key, ticket: TicketRef { id: PsaId(i as i64), number: None } }, now())
            .unwrap();
    }
    // A second raise event of an issue that is still open is not a second ticket.
    let again =
        event(Product::Office365, EventClass::Office365(Office365EventType::LicenseIssue), Duration::minutes(1));
    assert!(matches!(
        decide_event(&again, &ctx, &ledger, now()),
        EventDecision::Skip { reason: SkipReason::AlreadyTicketed, .. }
    ));

    let issues = |active: bool| StatusSnapshot {
        tenant: tenant.clone(),
        product: Product::Office365,
        devices: vec![],
        issues: [Office365EventType::MailboxesProtectionNotProvided, Office365EventType::LicenseIssue]
            .into_iter()
            .map(|t| IssueState { event_type: t, active, since: Some(now()), resolved_at: None })
            .collect(),
        unknown_descriptions: 0,
    };
    assert!(reconcile(&issues(true), &ctx, &ledger, now()).actions.is_empty());
    let rec = reconcile(&issues(false), &ctx, &ledger, now());
    let closed: Vec<&TicketKey> =
        rec.actions.iter().filter_map(|a| if let Action::Close(c) = a { Some(&c.key) } else { None }).collect();
    assert_eq!(
        closed,
        vec![
            &TicketKey::Issue {
                tenant: tenant.clone(),
                event_type: Office365EventType::MailboxesProtectionNotProvided
            },
            &TicketKey::Issue { tenant: tenant.clone(), event_type: Office365EventType::LicenseIssue },
        ]
    );
    // Silence is not a resolved signal.
    let silent = StatusSnapshot { issues: vec![], ..issues(false) };
    assert!(reconcile(&silent, &ctx, &ledger, now()).actions.is_empty());
    // Security Center and Endpoint Security Cloud event tickets never close by themselves.
    let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Critical), Duration::minutes(1));
    let EventDecision::Create(c) = decide_event(&ev, &ctx, &Ledger::new(), now()) else { panic!() };
    assert!(matches!(c.key, TicketKey::Event { .. }));
}

/// Invariant 2 across a crash: after a restart, `Planned` entries are looked up, not re-created.
#[test]
fn recovery_looks_planned_entries_up_before_creating() {
    let ctx = ctx(&all_on());
    let mut ledger = Ledger::new();
    let ev = event(Product::SecurityCenter, EventClass::Severity(Severity::Warning), Duration::hours(1));
    let EventDecision::Create(c) = decide_event(&ev, &ctx, &ledger, now()) else { panic!() };
    ledger.apply(&c.transition(), now()).unwrap();
    let mut crit = ev;
    crit.source_id = SourceEventId::new("2");
    crit.class = EventClass::Severity(Severity::Critical);
    let EventDecision::Create(c2) = decide_event(&crit, &ctx, &ledger, now()) else { panic!() };
    ledger.apply(&c2.transition(), now()).unwrap();
    // persisted and read back (the daemon's store holds entries as JSON)
    let json = serde_json::to_string(&ledger).unwrap();
    let restored: Ledger = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, ledger);
    use ticketing_core::ledger::Recovery;
    assert_eq!(
        restored.recovery(),
        vec![Recovery::LookUpThenCreate(c2.key), Recovery::LookUpThenCreate(c.key.clone())],
        "critical work first"
    );
    // Transitions out of order are refused.
    let mut l = restored;
    let err = l.apply(&Transition::Closed { key: c.key.clone() }, now()).unwrap_err();
    assert_eq!(err.state, "planned");
    assert!(l.apply(&c.transition(), now()).is_err(), "planning a live key twice is refused");
}
