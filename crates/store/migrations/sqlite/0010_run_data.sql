-- Step data (`[[workflows.steps]] expose = [...]`, `context.run.steps`): what
-- each succeeded step of a run exposed, as a JSON object by step id, written
-- in the commit that records the step's success.
ALTER TABLE runs ADD COLUMN step_data TEXT NOT NULL DEFAULT '{}';
-- Correlation (`[[workflows]] correlate = "<argument>"`): the SHA-256 of the
-- argument's value (no customer id is kept here), so a call without a run id
-- finds the agent's open run of the workflow with the same value.
ALTER TABLE runs ADD COLUMN correlation TEXT;
CREATE INDEX runs_correlation ON runs (agent, workflow, correlation) WHERE correlation IS NOT NULL;
