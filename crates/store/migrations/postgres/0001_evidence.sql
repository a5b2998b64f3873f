-- Evidence: one row per record, a leaf of the Merkle log.
CREATE TABLE evidence (
    seq        BIGINT PRIMARY KEY,    -- leaf index, from 0
    leaf_hash  BYTEA  NOT NULL,       -- SHA-256(0x00 || body)
    body       TEXT,                  -- canonical JSON; NULL once pruned
    time_us    BIGINT NOT NULL,       -- record time, µs since the Unix epoch
    kind       TEXT   NOT NULL,
    agent      TEXT,
    tool       TEXT,
    workflow   TEXT,
    run_id     TEXT,
    action_id  TEXT,
    decision   TEXT,
    status     TEXT,
    code       TEXT
);
CREATE INDEX evidence_agent_time    ON evidence (agent, time_us);
CREATE INDEX evidence_tool_time     ON evidence (tool, time_us);
CREATE INDEX evidence_workflow_time ON evidence (workflow, time_us);
CREATE INDEX evidence_run           ON evidence (run_id, seq);
CREATE INDEX evidence_time          ON evidence (time_us);

-- Which policies and approvers a record names, for queries.
CREATE TABLE evidence_policy (
    policy_id TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (policy_id, seq)
);
CREATE TABLE evidence_approver (
    approver TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (approver, seq)
);

-- Signed tree heads (C2SP signed notes).
CREATE TABLE checkpoints (
    id         BIGSERIAL PRIMARY KEY,
    size       BIGINT NOT NULL,
    root       BYTEA  NOT NULL,
    key_id     TEXT   NOT NULL,
    note       TEXT   NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE INDEX checkpoints_size ON checkpoints (size);

-- Every key that has signed checkpoints, oldest first.
CREATE TABLE signing_keys (
    key_id     TEXT   PRIMARY KEY,
    verifier   TEXT   NOT NULL,
    created_us BIGINT NOT NULL
);
