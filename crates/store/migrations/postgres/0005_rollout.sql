-- The rows replay, approval statistics and tune read (decisions and the
-- approval records), in log order: a streaming scan of them visits only
-- these, not every record. The scan's query repeats this exact condition
-- so that the planner can use the index.
CREATE INDEX evidence_rollout ON evidence (seq, kind, decision)
    WHERE kind IN ('action_decided', 'approval_requested', 'approval_recorded', 'approval_granted', 'approval_escalated', 'approval_expired', 'approval_cancelled');
