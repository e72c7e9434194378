-- Issue 15: a citizen's feedback names a published policy (checked at submission); the policy
-- page counts the feedback about it.
CREATE INDEX feedback_policy ON feedback (policy_id);
