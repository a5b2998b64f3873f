-- Console sessions. The cookie holds a random secret; only its SHA-256 is
-- stored, so a copy of the database cannot be used to sign in. Sign-out
-- and expiry end a session for every replica (no session lives in one
-- process).
CREATE TABLE console_sessions (
    id_hash    TEXT    PRIMARY KEY,   -- hex SHA-256 of the cookie value
    person     TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,      -- the token every state change must carry
    created_us BIGINT  NOT NULL,
    expires_us BIGINT  NOT NULL,
    ended_us   BIGINT
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_us);

-- The runs list of the console filters by workflow, agent and state, newest first.
CREATE INDEX runs_created ON runs (created_us);

-- A request's timeline when it belongs to no run: the records of its action.
CREATE INDEX evidence_action ON evidence (action_id, seq) WHERE action_id IS NOT NULL;

-- The console's inbox (the next deadline first) and its history of decided
-- requests (last changed first, by state or all); the page is picked from
-- these indexes alone.
CREATE INDEX approvals_urgent ON approvals (state, due_us, created_us, id);
CREATE INDEX approvals_updated ON approvals (state, updated_us, id);
CREATE INDEX approvals_recent ON approvals (updated_us, id);
