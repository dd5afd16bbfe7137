DROP INDEX tickets_open_claims;
DROP TABLE reputation_scores;
DROP TABLE reputation_events;
