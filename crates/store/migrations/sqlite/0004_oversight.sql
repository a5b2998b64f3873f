-- Oversight: incidents opened by playbooks, the durable outbox of their
-- notifications, tool circuits and agent quarantine. Written in the same
-- transactions as the evidence records that describe each change.

ALTER TABLE agent_state ADD COLUMN quarantine TEXT;  -- approver group, while quarantined

CREATE TABLE tool_circuits (
    tool          TEXT    PRIMARY KEY,
    open_until_us INTEGER NOT NULL,   -- proposals are refused until then
    reason        TEXT,
    opened_by     TEXT,
    updated_us    INTEGER NOT NULL
);

CREATE TABLE incidents (
    id              TEXT    PRIMARY KEY,
    playbook        TEXT    NOT NULL,
    detector        TEXT    NOT NULL,
    dedup_key       TEXT    NOT NULL,
    state           TEXT    NOT NULL,   -- open | acknowledged | resolved
    severity        TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    summary         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,   -- JSON: agent, tool, system, run, approval
    first_event_us  INTEGER NOT NULL,   -- time of the first triggering event
    first_seq       INTEGER,            -- its evidence record
    detected_us     INTEGER NOT NULL,
    acked_us        INTEGER,
    acked_by        TEXT,
    resolved_us     INTEGER,
    resolved_by     TEXT,
    level           INTEGER NOT NULL,   -- route paged last (0 = first route)
    due_us          INTEGER,            -- acknowledge by then, while open
    breaches        INTEGER NOT NULL,   -- response windows missed
    triggers        INTEGER NOT NULL,   -- triggers grouped into it
    last_trigger_us INTEGER NOT NULL,
    detail          TEXT    NOT NULL,   -- JSON
    updated_us      INTEGER NOT NULL
);
CREATE INDEX incidents_state ON incidents (state, detected_us);
CREATE INDEX incidents_dedup ON incidents (playbook, dedup_key, state);

-- One row per (incident, step, route): a step is never sent twice.
CREATE TABLE notifications (
    id          TEXT    PRIMARY KEY,
    incident_id TEXT    NOT NULL,
    step        TEXT    NOT NULL,   -- opened | escalated-N | acknowledged | resolved
    route       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,   -- webhook | slack | pagerduty
    payload     TEXT    NOT NULL,   -- JSON, without secrets
    state       TEXT    NOT NULL,   -- pending | delivered | failed
    attempts    INTEGER NOT NULL,
    next_us     INTEGER NOT NULL,   -- next attempt, while pending
    lease_us    INTEGER,            -- a replica is sending it until then
    last_error  TEXT,
    created_us  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL
);
CREATE INDEX notifications_due ON notifications (state, next_us);
CREATE INDEX notifications_incident ON notifications (incident_id, created_us);

CREATE INDEX actions_created ON actions (created_us);
