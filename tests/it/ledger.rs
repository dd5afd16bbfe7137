//! The double-entry ledger on the test's database.

use crate::util::TestApp;
use guildhall::db::DbConnection;
use guildhall::ledger::{self, account, AccountKind, LedgerError, NewTransfer, TransferKind};
use proptest::prelude::*;

fn t(
    key: &str,
    kind: TransferKind,
    debit: i64,
    credit: i64,
    amount: i64,
    pending: Option<i64>,
) -> NewTransfer {
    NewTransfer {
        key: key.into(),
        kind,
        debit,
        credit,
        amount,
        pending_id: pending,
        ticket_id: None,
        memo: String::new(),
    }
}

fn posted(key: &str, debit: i64, credit: i64, amount: i64) -> NewTransfer {
    t(key, TransferKind::Posted, debit, credit, amount, None)
}

fn bal(conn: &mut DbConnection, id: i64) -> (i64, i64) {
    let a = ledger::get_account(conn, id).unwrap();
    (a.balance(), a.available())
}

#[test]
fn escrow_release_splits_three_ways_and_balances() {
    let app = TestApp::new();
    let mut conn = app.conn();
    let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd")
        .unwrap()
        .id;
    let escrow = account(&mut conn, AccountKind::TicketEscrow, Some(1), "usd")
        .unwrap()
        .id;
    let helper = account(&mut conn, AccountKind::UserPayable, Some(7), "usd")
        .unwrap()
        .id;
    let project = account(&mut conn, AccountKind::ProjectRevenue, Some(3), "usd")
        .unwrap()
        .id;
    let platform = account(&mut conn, AccountKind::PlatformRevenue, None, "usd")
        .unwrap()
        .id;
    ledger::apply(&mut conn, &[posted("fund-1", clearing, escrow, 10_000)]).unwrap();
    let s = ledger::split(10_000, 500, 1000).unwrap();
    let chain = [
        posted("release-1:helper", escrow, helper, s.helper),
        posted("release-1:project", escrow, project, s.project),
        posted("release-1:platform", escrow, platform, s.platform),
    ];
    let done = ledger::apply(&mut conn, &chain).unwrap();
    assert_eq!(done.len(), 3);
    assert!(done
        .iter()
        .all(|t| t.chain_key.as_deref() == Some("release-1:helper")));
    assert_eq!(bal(&mut conn, helper).0, 8_500);
    assert_eq!(bal(&mut conn, project).0, 1_000);
    assert_eq!(bal(&mut conn, platform).0, 500);
    assert_eq!(bal(&mut conn, escrow).0, 0);
    assert_eq!(bal(&mut conn, clearing).0, -10_000);
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());

    // A replayed chain returns the original transfers and moves nothing.
    let again = ledger::apply(&mut conn, &chain).unwrap();
    assert_eq!(
        again.iter().map(|t| t.id).collect::<Vec<_>>(),
        done.iter().map(|t| t.id).collect::<Vec<_>>()
    );
    assert_eq!(bal(&mut conn, helper).0, 8_500);
    // The same key with other content is refused.
    let err = ledger::apply(&mut conn, &[posted("fund-1", clearing, escrow, 9_999)]).unwrap_err();
    assert!(matches!(err, LedgerError::IdempotencyMismatch(_)), "{err}");
}

#[test]
fn chains_are_all_or_nothing_and_accounts_never_go_negative() {
    let app = TestApp::new();
    let mut conn = app.conn();
    let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd")
        .unwrap()
        .id;
    let a = account(&mut conn, AccountKind::UserPayable, Some(1), "usd")
        .unwrap()
        .id;
    let b = account(&mut conn, AccountKind::UserPayable, Some(2), "usd")
        .unwrap()
        .id;
    let eur = account(&mut conn, AccountKind::UserPayable, Some(3), "eur")
        .unwrap()
        .id;
    ledger::apply(&mut conn, &[posted("f", clearing, a, 1_000)]).unwrap();
    // The second link fails: the first is not applied either.
    let err = ledger::apply(
        &mut conn,
        &[posted("x1", a, b, 600), posted("x2", a, b, 600)],
    )
    .unwrap_err();
    assert!(
        matches!(err, LedgerError::InsufficientFunds(id) if id == a),
        "{err}"
    );
    assert_eq!(bal(&mut conn, a).0, 1_000);
    assert_eq!(bal(&mut conn, b).0, 0);
    assert!(matches!(
        ledger::apply(&mut conn, &[posted("c", a, eur, 1)]).unwrap_err(),
        LedgerError::AccountMismatch(..)
    ));
    assert!(matches!(
        ledger::apply(&mut conn, &[posted("z", a, b, 0)]).unwrap_err(),
        LedgerError::Invalid(_)
    ));
    // Frozen accounts take credits but give nothing.
    ledger::set_frozen(&mut conn, a, true).unwrap();
    assert!(matches!(
        ledger::apply(&mut conn, &[posted("fr", a, b, 1)]).unwrap_err(),
        LedgerError::Frozen(_)
    ));
    ledger::apply(&mut conn, &[posted("in", clearing, a, 5)]).unwrap();
    ledger::set_frozen(&mut conn, a, false).unwrap();
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
}

#[test]
fn holds_post_in_part_or_void_once() {
    let app = TestApp::new();
    let mut conn = app.conn();
    let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd")
        .unwrap()
        .id;
    let escrow = account(&mut conn, AccountKind::TicketEscrow, Some(9), "usd")
        .unwrap()
        .id;
    let helper = account(&mut conn, AccountKind::UserPayable, Some(4), "usd")
        .unwrap()
        .id;
    ledger::apply(&mut conn, &[posted("fund", clearing, escrow, 5_000)]).unwrap();
    let hold = ledger::apply(
        &mut conn,
        &[t(
            "hold",
            TransferKind::Pending,
            escrow,
            helper,
            4_000,
            None,
        )],
    )
    .unwrap()[0]
        .id;
    assert_eq!(bal(&mut conn, escrow), (5_000, 1_000), "the hold reserves");
    assert!(matches!(
        ledger::apply(&mut conn, &[posted("too-much", escrow, helper, 1_001)]).unwrap_err(),
        LedgerError::InsufficientFunds(_)
    ));
    assert!(matches!(
        ledger::apply(
            &mut conn,
            &[t(
                "over",
                TransferKind::PostPending,
                0,
                0,
                4_001,
                Some(hold)
            )]
        )
        .unwrap_err(),
        LedgerError::ExceedsPending { .. }
    ));
    ledger::apply(
        &mut conn,
        &[t(
            "post",
            TransferKind::PostPending,
            0,
            0,
            3_000,
            Some(hold),
        )],
    )
    .unwrap();
    assert_eq!(
        bal(&mut conn, escrow),
        (2_000, 2_000),
        "the remainder returns"
    );
    assert_eq!(bal(&mut conn, helper), (3_000, 3_000));
    assert!(matches!(
        ledger::apply(
            &mut conn,
            &[t(
                "post-again",
                TransferKind::PostPending,
                0,
                0,
                1,
                Some(hold)
            )]
        )
        .unwrap_err(),
        LedgerError::AlreadyResolved(_)
    ));
    assert!(matches!(
        ledger::apply(
            &mut conn,
            &[t(
                "void-late",
                TransferKind::VoidPending,
                0,
                0,
                0,
                Some(hold)
            )]
        )
        .unwrap_err(),
        LedgerError::AlreadyResolved(_)
    ));
    let hold2 = ledger::apply(
        &mut conn,
        &[t(
            "hold2",
            TransferKind::Pending,
            escrow,
            helper,
            2_000,
            None,
        )],
    )
    .unwrap()[0]
        .id;
    ledger::apply(
        &mut conn,
        &[t("void", TransferKind::VoidPending, 0, 0, 0, Some(hold2))],
    )
    .unwrap();
    assert_eq!(bal(&mut conn, escrow), (2_000, 2_000));
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
}

#[test]
fn concurrent_posts_and_spends_never_create_or_lose_money() {
    let app = TestApp::new();
    let (clearing, source, sink, hold) = {
        let mut conn = app.conn();
        let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd")
            .unwrap()
            .id;
        let source = account(&mut conn, AccountKind::TicketEscrow, Some(1), "usd")
            .unwrap()
            .id;
        let sink = account(&mut conn, AccountKind::UserPayable, Some(2), "usd")
            .unwrap()
            .id;
        ledger::apply(&mut conn, &[posted("fund", clearing, source, 2_000)]).unwrap();
        let hold = ledger::apply(
            &mut conn,
            &[t("hold", TransferKind::Pending, source, sink, 1_000, None)],
        )
        .unwrap()[0]
            .id;
        (clearing, source, sink, hold)
    };
    let results: Vec<(bool, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let pool = app.pool.clone();
                s.spawn(move || {
                    let mut conn = pool.get().unwrap();
                    // Everyone tries to post the same hold, and to spend 100 of the 1,000 left.
                    let posted_hold = ledger::apply(
                        &mut conn,
                        &[t(
                            &format!("post-{i}"),
                            TransferKind::PostPending,
                            0,
                            0,
                            1_000,
                            Some(hold),
                        )],
                    )
                    .is_ok();
                    let spent = ledger::apply(
                        &mut conn,
                        &[posted(&format!("spend-{i}"), source, sink, 100)],
                    )
                    .is_ok();
                    (posted_hold, spent)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.0).count(),
        1,
        "a hold posts once"
    );
    assert_eq!(
        results.iter().filter(|r| r.1).count(),
        10,
        "exactly the available 1,000 is spent"
    );
    let mut conn = app.conn();
    assert_eq!(bal(&mut conn, source), (0, 0));
    assert_eq!(bal(&mut conn, sink).0, 2_000);
    assert_eq!(bal(&mut conn, clearing).0, -2_000);
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
}

#[derive(Debug, Clone)]
enum Op {
    Fund(usize, i64),
    Move(usize, usize, i64),
    Hold(usize, usize, i64),
    Post(usize, i64),
    Void(usize),
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..5usize, 1..5_000i64).prop_map(|(a, n)| Op::Fund(a, n)),
        (0..5usize, 0..5usize, 1..3_000i64).prop_map(|(a, b, n)| Op::Move(a, b, n)),
        (0..5usize, 0..5usize, 1..3_000i64).prop_map(|(a, b, n)| Op::Hold(a, b, n)),
        (0..20usize, 1..3_000i64).prop_map(|(h, n)| Op::Post(h, n)),
        (0..20usize).prop_map(Op::Void),
        (0..30usize).prop_map(Op::Replay),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_keep_every_invariant(ops in proptest::collection::vec(op(), 1..40)) {
        let app = TestApp::new();
        let mut conn = app.conn();
        let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd").unwrap().id;
        let accts: Vec<i64> = (0..5).map(|i| account(&mut conn, AccountKind::UserPayable, Some(i), "usd").unwrap().id).collect();
        let mut holds: Vec<i64> = Vec::new();
        let mut applied: Vec<Vec<NewTransfer>> = Vec::new();
        // The model: what each account must hold, computed independently.
        let mut model: std::collections::HashMap<i64, (i64, i64)> = std::collections::HashMap::new();
        for (n, op) in ops.iter().enumerate() {
            let key = format!("op-{n}");
            let chain = match op {
                Op::Fund(a, amt) => vec![posted(&key, clearing, accts[*a], *amt)],
                Op::Move(a, b, amt) if a != b => vec![posted(&key, accts[*a], accts[*b], *amt)],
                Op::Hold(a, b, amt) if a != b => vec![t(&key, TransferKind::Pending, accts[*a], accts[*b], *amt, None)],
                Op::Post(h, amt) if !holds.is_empty() => vec![t(&key, TransferKind::PostPending, 0, 0, *amt, Some(holds[h % holds.len()]))],
                Op::Void(h) if !holds.is_empty() => vec![t(&key, TransferKind::VoidPending, 0, 0, 0, Some(holds[h % holds.len()]))],
                Op::Replay(i) if !applied.is_empty() => applied[i % applied.len()].clone(),
                _ => continue,
            };
            let before: Vec<(i64, i64)> = accts.iter().map(|a| bal(&mut conn, *a)).collect();
            match ledger::apply(&mut conn, &chain) {
                Ok(done) => {
                    if matches!(op, Op::Hold(..)) {
                        holds.push(done[0].id);
                    }
                    if !matches!(op, Op::Replay(_)) {
                        applied.push(chain.clone());
                        for tr in &done {
                            let e = model.entry(tr.debit_account_id).or_default();
                            match tr.kind.as_str() {
                                "posted" | "post_pending" => e.0 -= tr.amount,
                                _ => {}
                            }
                            let e = model.entry(tr.credit_account_id).or_default();
                            match tr.kind.as_str() {
                                "posted" | "post_pending" => e.0 += tr.amount,
                                _ => {}
                            }
                        }
                    } else {
                        let after: Vec<(i64, i64)> = accts.iter().map(|a| bal(&mut conn, *a)).collect();
                        prop_assert_eq!(&before, &after, "a replay moves nothing");
                    }
                }
                Err(LedgerError::Database(e)) => panic!("database error: {e}"),
                Err(_) => {
                    let after: Vec<(i64, i64)> = accts.iter().map(|a| bal(&mut conn, *a)).collect();
                    prop_assert_eq!(&before, &after, "a refused chain writes nothing");
                }
            }
            let violations = ledger::check(&mut conn).unwrap();
            prop_assert!(violations.is_empty(), "after {:?}: {:?}", op, violations);
            for a in &accts {
                let (balance, available) = bal(&mut conn, *a);
                prop_assert!(available >= 0);
                prop_assert_eq!(balance, model.get(a).map(|m| m.0).unwrap_or(0));
            }
        }
    }
}

#[test]
fn ledger_check_command_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_guildhall"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUILDHALL_")) {
            c.env_remove(k);
        }
        c.args(args)
            .env("GUILDHALL_DATA_DIR", dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["ledger", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no violations"));
    {
        let pool = guildhall::db::connect(
            &dir.path().join("guildhall.db").to_string_lossy(),
            1,
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let mut conn = pool.get().unwrap();
        let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd")
            .unwrap()
            .id;
        let a = account(&mut conn, AccountKind::UserPayable, Some(1), "usd")
            .unwrap()
            .id;
        ledger::apply(&mut conn, &[posted("f", clearing, a, 700)]).unwrap();
        use diesel::prelude::*;
        use guildhall::db::schema::ledger_accounts as la;
        // Money appears from nowhere: the account's sums no longer match its transfers.
        diesel::update(la::table.find(a))
            .set(la::credits_posted.eq(800))
            .execute(&mut *conn)
            .unwrap();
    }
    let out = run(&["ledger", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("violation: account") && text.contains("add up to 100"),
        "{text}"
    );
}

#[test]
fn crossing_chains_do_not_deadlock() {
    let app = TestApp::new();
    let (a, b) = {
        let mut conn = app.conn();
        let clearing = account(&mut conn, AccountKind::GatewayClearing, None, "usd")
            .unwrap()
            .id;
        let a = account(&mut conn, AccountKind::UserPayable, Some(1), "usd")
            .unwrap()
            .id;
        let b = account(&mut conn, AccountKind::UserPayable, Some(2), "usd")
            .unwrap()
            .id;
        ledger::apply(
            &mut conn,
            &[
                posted("fa", clearing, a, 10_000),
                posted("fb", clearing, b, 10_000),
            ],
        )
        .unwrap();
        (a, b)
    };
    let failures: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let pool = app.pool.clone();
                s.spawn(move || {
                    let mut conn = pool.get().unwrap();
                    let (x, y) = if i % 2 == 0 { (a, b) } else { (b, a) };
                    (0..10)
                        .filter(|j| {
                            ledger::apply(
                                &mut conn,
                                &[
                                    posted(&format!("m-{i}-{j}"), x, y, 7),
                                    posted(&format!("n-{i}-{j}"), y, x, 3),
                                ],
                            )
                            .is_err()
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(failures, 0, "no chain failed (no deadlock, no lost update)");
    let mut conn = app.conn();
    assert_eq!(bal(&mut conn, a).0 + bal(&mut conn, b).0, 20_000);
    assert_eq!(
        bal(&mut conn, a).0,
        10_000,
        "both directions ran equally often"
    );
    assert_eq!(ledger::check(&mut conn).unwrap(), Vec::<String>::new());
}
