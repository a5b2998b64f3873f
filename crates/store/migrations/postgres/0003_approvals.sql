-- Approval requests: one per action that needs approval, bound to the
-- SHA-256 of the canonical request. Written in the same transactions as the
-- evidence records that describe each change.

CREATE TABLE approvals (
    id           TEXT    PRIMARY KEY,
    action_id    TEXT    NOT NULL,
    agent        TEXT    NOT NULL,
    tool         TEXT    NOT NULL,
    run_id       TEXT,
    request_hash TEXT    NOT NULL,   -- sha256 of the canonical request
    state        TEXT    NOT NULL,   -- pending | approved | denied | expired
    slots        TEXT    NOT NULL,   -- JSON: required groups, quorum, escalation level
    eligible     TEXT    NOT NULL,   -- ",group,group," of every group that may answer
    votes        TEXT    NOT NULL,   -- JSON: each approver's answer
    context      TEXT    NOT NULL,   -- JSON: what the approver sees besides the arguments
    due_us       BIGINT,              -- next escalation or expiry, while pending
    escalations  BIGINT NOT NULL,
    returned     BIGINT NOT NULL,     -- 1 once a re-proposal was answered with the final action
    created_us   BIGINT NOT NULL,
    updated_us   BIGINT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state, created_us, id);
CREATE INDEX approvals_due ON approvals (state, due_us);
CREATE INDEX approvals_request ON approvals (agent, request_hash, created_us);
CREATE UNIQUE INDEX approvals_action ON approvals (action_id);

-- One row per (request, group that may answer it), kept with each write of
-- the request: the inbox of a group, and its count, without scanning every
-- request.
CREATE TABLE approval_groups (
    approval_id TEXT    NOT NULL,
    grp         TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    created_us  BIGINT NOT NULL,
    PRIMARY KEY (approval_id, grp)
);
CREATE INDEX approval_groups_inbox ON approval_groups (grp, state, created_us);
