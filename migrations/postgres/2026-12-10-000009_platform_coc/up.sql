-- The platform's code of conduct, versioned: a new text is the next version.
CREATE TABLE platform_cocs (
    version INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL
);
-- Who accepted which version, when (the latest per person).
CREATE TABLE platform_coc_acceptances (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    version INTEGER NOT NULL,
    accepted_at TIMESTAMP NOT NULL
);
