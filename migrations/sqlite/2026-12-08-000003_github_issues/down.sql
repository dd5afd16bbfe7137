DROP TABLE github_issue_links;
