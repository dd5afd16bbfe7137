-- An address is verified by a link mailed at registration; until then
-- nothing but the verification mail is sent to it.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP;
