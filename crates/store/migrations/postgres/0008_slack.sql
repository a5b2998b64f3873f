-- Slack messages that show approval requests. One row per request and
-- channel; the message is posted, then updated in place, by whichever
-- replica holds the row's lease. Every write of the request bumps
-- `wanted` in the same transaction, so a message is brought up to date
-- after every change, also after a crash.
CREATE TABLE slack_messages (
    approval_id TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    ts          TEXT,                  -- Slack's id of the posted message
    wanted      BIGINT  NOT NULL,      -- revision of the request to show
    shown       BIGINT  NOT NULL,      -- revision the message shows (0: not posted)
    post_tries  BIGINT  NOT NULL,      -- claims made while not yet posted
    attempts    BIGINT  NOT NULL,      -- failed calls since the last success
    next_us     BIGINT  NOT NULL,
    lease_us    BIGINT,
    last_error  TEXT,
    failed      BIGINT  NOT NULL,      -- 1: gave up on this revision
    created_us  BIGINT  NOT NULL,
    updated_us  BIGINT  NOT NULL,
    PRIMARY KEY (approval_id, channel)
);
CREATE INDEX slack_messages_due ON slack_messages (next_us) WHERE wanted > shown AND failed = 0;

-- Interactions already acted on (hash of timestamp and body): a replay of a
-- signed request inside the 5-minute window is refused on every replica.
CREATE TABLE slack_interactions (
    id      TEXT    PRIMARY KEY,
    seen_us BIGINT  NOT NULL
);
CREATE INDEX slack_interactions_seen ON slack_interactions (seen_us);
