//! The binary: help text, configuration errors, `migrate`.

use std::process::Command;

fn guildhall() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_guildhall"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GUILDHALL_")) {
        c.env_remove(k);
    }
    c
}

#[test]
fn help_names_every_command() {
    let out = guildhall().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve",
        "migrate",
        "worker",
        "reindex",
        "import",
        "eval",
        "mail-receive",
    ] {
        assert!(help.contains(cmd), "{cmd} missing from --help:\n{help}");
    }
    let out = guildhall().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--demo"));
}

#[test]
fn invalid_configuration_stops_with_the_variable_named() {
    let out = guildhall()
        .arg("migrate")
        .env("GUILDHALL_BIND", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GUILDHALL_BIND"), "{err}");
}

#[test]
fn migrate_creates_the_data_directory_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let out = guildhall()
        .arg("migrate")
        .env("GUILDHALL_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("guildhall.db").exists());
    // Idempotent.
    let out = guildhall()
        .arg("migrate")
        .env("GUILDHALL_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn readme_documents_every_setting() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for s in guildhall::config::SETTINGS {
        assert!(
            readme.contains(&format!("`{}`", s.env)),
            "{} is not in README.md",
            s.env
        );
    }
}

fn site(name: &str) -> String {
    format!(
        "{}/tests/fixtures/stackexchange/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn eval_matching_and_routing_run_on_a_committed_site() {
    let out = guildhall()
        .args([
            "eval",
            "matching",
            "--json",
            &site("genai.stackexchange.com"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = rows.as_array().unwrap().last().unwrap().clone();
    assert_eq!(all["site"], "all");
    let n = all["matcher"]["questions"].as_u64().unwrap();
    assert!(
        n > 0,
        "held-out questions with an accepted answer by someone else"
    );
    for ranker in ["matcher", "activity", "bm25_profile"] {
        let m = &all[ranker];
        assert_eq!(
            m["questions"].as_u64(),
            Some(n),
            "same questions for every ranker"
        );
        for metric in ["p_at_1", "mrr", "ndcg_at_3", "recall_at_10"] {
            let v = m[metric].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{ranker} {metric} = {v}");
        }
        let (p1, mrr, r10) = (
            m["p_at_1"].as_f64().unwrap(),
            m["mrr"].as_f64().unwrap(),
            m["recall_at_10"].as_f64().unwrap(),
        );
        assert!(p1 <= mrr + 1e-12 && p1 <= r10 + 1e-12, "{ranker}: {m}");
    }

    let out = guildhall()
        .args([
            "eval",
            "routing",
            &site("genai.stackexchange.com"),
            &site("beer.stackexchange.com"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with("| site | questions | top-1 | top-3 |"),
        "{table}"
    );
    let all = table.lines().last().unwrap();
    let top1: f64 = all.split('|').nth(3).unwrap().trim().parse().unwrap();
    assert!(top1 > 0.5, "two unrelated sites are told apart: {table}");

    let out = guildhall().args(["eval", "routing"]).output().unwrap();
    assert!(!out.status.success(), "a directory is required");
}
