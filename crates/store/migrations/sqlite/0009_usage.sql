-- Counters over sliding windows (`[[counters]]`, `context.usage`): one row
-- per counted action and counter, written in the transaction that allows
-- the action. `key` is the SHA-256 of the counter's key (its `per`
-- values), so no argument value (a customer id) is kept here. Rows older
-- than their counter's window are deleted as new ones are written.
CREATE TABLE usage_events (
    counter   TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    action_id TEXT    NOT NULL,
    at_us     INTEGER  NOT NULL,
    amount    INTEGER  NOT NULL,
    PRIMARY KEY (counter, key, action_id)
);
CREATE INDEX usage_events_window ON usage_events (counter, key, at_us);
