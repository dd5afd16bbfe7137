DROP TABLE reputation_scores;
DROP TABLE reputation_events;
