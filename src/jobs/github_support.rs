//! `+support` and `-support` on a GitHub issue: imports the issue and its
//! comments as a draft ticket for the issue's author and answers on GitHub
//! with one comment (edited in place when repeated), the `support` label
//! and a closed issue — or withdraws the untouched draft and reopens the
//! issue. Each GitHub call is safe to repeat, so a retried job converges.

use super::JobContext;
use crate::channels::github as gh;
use crate::job_payloads::GithubSupport;
use guildhall_jobs::BackgroundJob;

/// Hidden in the bot's comment, so a run that died before recording the
/// comment's id finds it again.
const MARKER: &str = "<!-- guildhall:support -->";

/// Text safe to put in Markdown: no links, mentions, HTML or emphasis.
fn markdown_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>#@!|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How a duration reads in the bot's comment.
fn human(d: chrono::Duration) -> String {
    let hours = d.num_minutes() as f64 / 60.0;
    if hours < 1.0 {
        format!("{} minutes", d.num_minutes().max(1))
    } else if hours < 48.0 {
        format!("{:.0} hours", hours.round())
    } else {
        format!("{:.0} days", (hours / 24.0).round())
    }
}

impl BackgroundJob for GithubSupport {
    const JOB_NAME: &'static str = "github_support";
    const DEDUPLICATED: bool = false;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let Some(app) = ctx.github.as_ref() else {
            tracing::warn!("+support ignored: the GitHub App is not configured");
            return Ok(());
        };
        let (inst, repo, number) = (self.installation_id, &self.repository, self.issue_number);
        let db = |e: crate::error::AppError| anyhow::anyhow!("{e}");
        match self.command.as_str() {
            "import" => {
                let issue = app.issue(inst, repo, number)?;
                if issue.node_id != self.issue_node_id {
                    anyhow::bail!("issue {repo}#{number} is no longer the one the command was on");
                }
                let all_comments = app.comments(inst, repo, number)?;
                // Our comment from an earlier run that died before it was
                // recorded: found by its marker, edited instead of doubled.
                let marked = all_comments
                    .iter()
                    .find(|c| {
                        c.user.kind == "Bot" && c.body.as_deref().unwrap_or("").contains(MARKER)
                    })
                    .map(|c| c.id);
                let comments: Vec<(String, String)> = all_comments
                    .into_iter()
                    .filter(|c| c.user.kind != "Bot")
                    .filter(|c| gh::command(c.body.as_deref().unwrap_or("")).is_none())
                    .map(|c| (c.user.login, c.body.unwrap_or_default()))
                    .collect();
                let (ticket, project, median) = {
                    let mut conn = ctx.pool.get()?;
                    let requester =
                        gh::user_for_account(&mut conn, issue.user.id, &issue.user.login)
                            .map_err(db)?;
                    let body = gh::ticket_body(
                        issue.body.as_deref().unwrap_or(""),
                        &comments,
                        &issue.html_url,
                    );
                    let ticket = gh::import_issue(
                        &mut conn,
                        self.project_id,
                        requester,
                        self.repository_id,
                        number,
                        &self.issue_node_id,
                        &issue.title,
                        &body,
                        self.private,
                    )
                    .map_err(db)?;
                    let project =
                        crate::domain::projects::by_id(&mut conn, self.project_id).map_err(db)?;
                    let median = crate::domain::tickets::median_first_response(
                        &mut conn,
                        self.project_id,
                        90,
                    )?;
                    (ticket, project, median)
                };
                let floor = (project.min_response_hours > 0).then(|| {
                    format!(
                        " {} aims to answer within {} hours.",
                        markdown_text(&project.name),
                        project.min_response_hours
                    )
                });
                let expected = match median {
                    Some(m) => format!(
                        "{}'s helpers have been answering within {} (the median over the last 90 days).{}",
                        markdown_text(&project.name),
                        human(m),
                        floor.unwrap_or_default()
                    ),
                    None => floor.map(|f| f.trim().to_owned()).unwrap_or_else(|| {
                        format!(
                            "{} has no measured response time yet.",
                            markdown_text(&project.name)
                        )
                    }),
                };
                let text = format!(
                    "This issue is now a support ticket on Guildhall: {url}\n\n\
                     @{author}, the ticket is a draft of yours: sign in with GitHub to review and submit it. {expected} \
                     For a faster answer, fund a bounty or ask a paid expert on the ticket's page.\n\n\
                     <sub>A maintainer wrote `+support`; `-support` undoes it.</sub>\n{MARKER}",
                    url = ctx.mail.ticket_url(ticket),
                    author = issue.user.login,
                );
                let existing = gh::bot_comment(&mut *ctx.pool.get()?, &self.issue_node_id)
                    .map_err(db)?
                    .or(marked);
                match existing {
                    Some(comment) => app.edit_comment(inst, repo, comment, &text)?,
                    None => {
                        let comment = app.comment(inst, repo, number, &text)?;
                        gh::set_bot_comment(&mut *ctx.pool.get()?, &self.issue_node_id, comment)
                            .map_err(db)?;
                    }
                }
                app.add_label(inst, repo, number, "support")?;
                app.set_state(inst, repo, number, false)?;
                tracing::info!(ticket_id = ticket, issue = number, "GitHub issue imported");
            }
            "withdraw" => {
                let outcome =
                    gh::withdraw_issue(&mut *ctx.pool.get()?, &self.issue_node_id).map_err(db)?;
                let text = match outcome {
                    gh::Withdrawal::Withdrawn => Some(
                        "The support ticket for this issue was withdrawn; the issue is open again.",
                    ),
                    gh::Withdrawal::Touched => Some(
                        "This issue's support ticket has been worked on, so it stays; the issue is open again.",
                    ),
                    // Withdrawn before (a repeat, or a retry after the edit):
                    // the comment already says so.
                    gh::Withdrawal::Nothing => None,
                };
                let comment =
                    gh::bot_comment(&mut *ctx.pool.get()?, &self.issue_node_id).map_err(db)?;
                if let (Some(comment), Some(text)) = (comment, text) {
                    let body =
                        format!("{text}\n\n<sub>A maintainer wrote `-support`.</sub>\n{MARKER}");
                    app.edit_comment(inst, repo, comment, &body)?;
                }
                app.set_state(inst, repo, number, true)?;
            }
            other => tracing::warn!(command = other, "unknown GitHub support command"),
        }
        Ok(())
    }
}
