-- Runtime state: workflow runs, actions and agent pauses. Written in the
-- same transactions as the evidence records that describe each change.

CREATE TABLE runs (
    id          TEXT    PRIMARY KEY,
    workflow    TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    state       TEXT    NOT NULL,   -- running | completed | cancelled
    trigger_ctx TEXT,               -- JSON: source, reference, requester
    done_steps  TEXT    NOT NULL,   -- JSON array of step ids that succeeded
    created_us  INTEGER NOT NULL,
    updated_us  INTEGER NOT NULL
);
CREATE INDEX runs_state ON runs (state, updated_us);

CREATE TABLE actions (
    id              TEXT    PRIMARY KEY,
    agent           TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    run_id          TEXT,
    step            TEXT,
    mode            TEXT    NOT NULL,   -- enforce | check
    shadow          INTEGER NOT NULL,   -- 1 when decided in shadow mode
    state           TEXT    NOT NULL,   -- the lifecycle status
    code            TEXT,               -- standardized code when not succeeded
    idempotency_key TEXT,
    request_hash    TEXT    NOT NULL,   -- sha256 of the canonical request
    arguments       TEXT,               -- JSON; kept only until the action is final
    decision        TEXT    NOT NULL,   -- JSON of the decision
    result          TEXT,               -- JSON: result or error (redacted, capped)
    attempts        INTEGER NOT NULL,
    created_us      INTEGER NOT NULL,
    updated_us      INTEGER NOT NULL
);
CREATE INDEX actions_idempotency ON actions (agent, idempotency_key);
CREATE INDEX actions_state ON actions (state);
CREATE INDEX actions_run ON actions (run_id, created_us);

CREATE TABLE agent_state (
    agent      TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL,
    reason     TEXT,
    changed_by TEXT,
    updated_us INTEGER NOT NULL
);
