//! The PostgreSQL store's schema, as numbered migrations.

/// Schema migrations, applied in order; the index + 1 is the schema version. Version 1 is the
/// SQLite store's schema 4 (ledger, transition log, outbox view, cursors, rule book with its
/// revision, event history, retry requests, leader lease).
pub(super) const MIGRATIONS: &[&str] = &[
    // 1
    "CREATE TABLE ledger (
        key TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        state TEXT NOT NULL,
        generation BIGINT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        urgency TEXT NOT NULL,
        ticket_id BIGINT,
        entry TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX ledger_state ON ledger(state);
    CREATE TABLE transitions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key TEXT NOT NULL,
        transition TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL
    );
    CREATE VIEW outbox AS
        SELECT key, tenant, state, idempotency_key, urgency, updated_at FROM ledger
        WHERE state IN ('planned', 'closing')
           OR (state = 'closed' AND (entry::jsonb #>> '{state,note}') IS NOT NULL);
    CREATE TABLE cursors (
        source TEXT NOT NULL,
        tenant TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (source, tenant)
    );
    CREATE TABLE rulebook (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        saved TEXT NOT NULL,
        draft TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        revision BIGINT NOT NULL
    );
    CREATE TABLE event_history (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        product TEXT NOT NULL,
        tenant TEXT NOT NULL,
        source_id TEXT NOT NULL,
        occurred_at TIMESTAMPTZ NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (product, tenant, source_id)
    );
    CREATE INDEX event_history_seen ON event_history(seen_at, seq);
    CREATE TABLE retry_requests (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target TEXT NOT NULL,
        requested_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE leader (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        epoch BIGINT NOT NULL,
        holder TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );",
    // 2: the audit's decisions (kept as long as the event history)
    "CREATE TABLE decisions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL,
        product TEXT NOT NULL,
        tenant TEXT NOT NULL,
        event_id TEXT,
        device TEXT,
        device_name TEXT,
        outcome TEXT NOT NULL,
        decision TEXT NOT NULL
    );
    CREATE INDEX decisions_at ON decisions(at);
    CREATE INDEX decisions_event ON decisions(event_id);
    CREATE INDEX decisions_tenant ON decisions(tenant, at);",
    "CREATE TABLE documents (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        revision BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );",
    // 4: users, sessions, API tokens and the change log (issue 28)
    super::postgres::access::MIGRATION,
];
