-- One GitHub account per Guildhall account (two racing links cannot both
-- pass the check that comes before the insert).
CREATE UNIQUE INDEX user_identities_one_per_user ON user_identities(provider, user_id);
