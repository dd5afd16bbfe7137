-- A GitHub issue imported as a ticket by `+support` (or, later, opened
-- from a ticket): the issue's node id survives renames and transfers; the
-- bot's one comment is edited in place when the command is repeated.
CREATE TABLE github_issue_links (
    issue_node_id TEXT PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    repository_id BIGINT NOT NULL,
    issue_number BIGINT NOT NULL,
    bot_comment_id BIGINT,
    -- Set by `-support`: the draft was withdrawn and the issue reopened.
    withdrawn_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX github_issue_links_ticket ON github_issue_links(ticket_id);
