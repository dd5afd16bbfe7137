//! Proof that a requester works on another open-source project, for a
//! plan's FLOSS discount: through their own GitHub token they show admin or
//! maintain rights on a public repository under an OSI-approved licence.
//! The proof is stored and holds for a year
//! ([`crate::domain::plans::PROOF_VALID_DAYS`]); a FLOSS subscription's
//! renewal after that is charged without the discount until it is proved
//! again.

use crate::db::schema::floss_proofs;
use crate::db::DbConnection;
use crate::domain::now;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::integrations::github::UserRepository;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// OSI-approved licences, by the SPDX ids GitHub reports (both its short
/// `GPL-3.0` forms and the `-only`/`-or-later` ones).
pub const OSI_LICENCES: &[&str] = &[
    "0BSD",
    "AFL-3.0",
    "AGPL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-2.0",
    "Artistic-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSL-1.0",
    "CDDL-1.0",
    "ECL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.1",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "LPPL-1.3c",
    "MIT",
    "MIT-0",
    "MPL-2.0",
    "MS-PL",
    "MS-RL",
    "MulanPSL-2.0",
    "NCSA",
    "OFL-1.1",
    "OSL-3.0",
    "PostgreSQL",
    "UPL-1.0",
    "Unlicense",
    "Zlib",
];

/// Whether `spdx` names an OSI-approved licence.
pub fn is_osi(spdx: &str) -> bool {
    OSI_LICENCES.iter().any(|l| l.eq_ignore_ascii_case(spdx))
}

/// Whether `name` looks like a GitHub `owner/name`.
pub fn valid_repository(name: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match name.split_once('/') {
        Some((owner, repo)) => ok(owner) && ok(repo) && repo != "." && repo != "..",
        None => false,
    }
}

/// A row of `floss_proofs`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = floss_proofs)]
pub struct Proof {
    /// Who proved.
    pub user_id: i64,
    /// Their GitHub login.
    pub github_login: String,
    /// owner/name.
    pub repository: String,
    /// SPDX id.
    pub license: String,
    /// `admin` or `maintain`.
    pub permission: String,
    /// First proved.
    pub verified_at: NaiveDateTime,
    /// Last proved.
    pub checked_at: NaiveDateTime,
}

/// The user's proof, if any (however old).
pub fn of_user(conn: &mut DbConnection, user: i64) -> QueryResult<Option<Proof>> {
    floss_proofs::table
        .find(user)
        .select(Proof::as_select())
        .first(conn)
        .optional()
}

/// Records what GitHub showed `login`'s token of `repo`: accepted only for
/// a public repository under an OSI licence that they administer or
/// maintain (409 naming what is missing otherwise). Proving again renews
/// the proof for a year.
pub fn record(
    conn: &mut DbConnection,
    user: i64,
    login: &str,
    repo: &UserRepository,
) -> AppResult<Proof> {
    let refuse = |why: String| AppError::conflict(ErrorCode::FlossProofRequired, why);
    if repo.private {
        return Err(refuse(format!(
            "{} is private; the discount is for public open-source work",
            repo.full_name
        )));
    }
    let permission = if repo.admin {
        "admin"
    } else if repo.maintain {
        "maintain"
    } else {
        return Err(refuse(format!(
            "GitHub does not show you as an admin or maintainer of {}",
            repo.full_name
        )));
    };
    let license = match &repo.license {
        Some(l) if is_osi(l) => l.clone(),
        Some(l) => {
            return Err(refuse(format!(
                "{} is licensed {l}, which is not an OSI-approved licence",
                repo.full_name
            )))
        }
        None => {
            return Err(refuse(format!(
                "GitHub found no licence in {}",
                repo.full_name
            )))
        }
    };
    let at = now();
    crate::per_backend!(conn, |c| diesel::insert_into(floss_proofs::table)
        .values((
            floss_proofs::user_id.eq(user),
            floss_proofs::github_login.eq(login),
            floss_proofs::repository.eq(&repo.full_name),
            floss_proofs::license.eq(&license),
            floss_proofs::permission.eq(permission),
            floss_proofs::verified_at.eq(at),
            floss_proofs::checked_at.eq(at),
        ))
        .on_conflict(floss_proofs::user_id)
        .do_update()
        .set((
            floss_proofs::github_login.eq(login),
            floss_proofs::repository.eq(&repo.full_name),
            floss_proofs::license.eq(&license),
            floss_proofs::permission.eq(permission),
            floss_proofs::checked_at.eq(at),
        ))
        .execute(c))?;
    tracing::info!(user_id = user, repository = %repo.full_name, "FLOSS work proved");
    // A discount taken off at the gateway for an old proof comes back.
    guildhall_jobs::BackgroundJob::enqueue(&crate::job_payloads::SyncFlossDiscounts, conn)
        .map_err(AppError::internal)?;
    of_user(conn, user)?.ok_or_else(|| AppError::internal(anyhow::anyhow!("proof vanished")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_and_names() {
        assert!(is_osi("MIT") && is_osi("gpl-3.0") && is_osi("Apache-2.0"));
        assert!(!is_osi("NOASSERTION") && !is_osi("CC-BY-NC-4.0") && !is_osi("BUSL-1.1"));
        assert!(valid_repository("rust-lang/rust") && valid_repository("a.b/c_d"));
        for bad in ["", "x", "/x", "x/", "a/b/c", "a/..", "a b/c", "a/b?x=1"] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }
}
