-- Drills: real traffic marked as a drill (the drill id in the trigger).
-- The drill column lets statistics, replay and tune leave drill records
-- out without reading bodies; incidents a drill opened carry its id.
ALTER TABLE evidence ADD COLUMN drill TEXT;
ALTER TABLE incidents ADD COLUMN drill TEXT;
CREATE INDEX evidence_drill ON evidence (drill, seq) WHERE drill IS NOT NULL;
CREATE INDEX incidents_drill ON incidents (drill) WHERE drill IS NOT NULL;

-- One row per drill run: what the server must undo if it stops mid-drill,
-- and the report once it ended.
CREATE TABLE drills (
    id          TEXT    PRIMARY KEY,   -- drl_…
    name        TEXT    NOT NULL,      -- the pack's [[drills]] id
    state       TEXT    NOT NULL,      -- running | passed | failed | aborted
    started_by  TEXT    NOT NULL,
    started_us  BIGINT  NOT NULL,
    finished_us BIGINT,
    report      TEXT    NOT NULL       -- JSON
);
CREATE INDEX drills_started ON drills (started_us);
