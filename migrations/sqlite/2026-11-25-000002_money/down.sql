DROP TABLE idempotency_keys;
DROP TABLE releases;
DROP TABLE bounties;
