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
    for cmd in ["serve", "migrate", "worker", "reindex", "import"] {
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
