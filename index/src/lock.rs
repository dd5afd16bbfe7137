//! The single-writer lock of an on-disk index, and recovery of stale locks.
//!
//! tantivy guards an index directory with two lock files:
//! `.tantivy-writer.lock` (held for the whole life of an `IndexWriter`) and
//! `.tantivy-meta.lock` (held briefly while a reader reloads). With
//! `MmapDirectory` both are `flock(2)` locks on those files. The kernel
//! releases such a lock when its holder dies, so a lock *file* left behind
//! by a crashed process does not block anybody: the next open simply takes
//! the lock again. That is the normal crash case and needs nothing from us.
//!
//! A lock can still look busy with no live holder on filesystems whose lock
//! state outlives the process that took it (network filesystems, lock
//! daemons that lost track). For that case every writer records who it is
//! in [`OWNER_FILE`] right after taking the writer lock: its process id, the
//! kernel boot id and its pid namespace. When a lock stays busy for the
//! whole retry window, [`recover_stale_locks`] reads that record and removes
//! the lock file **only if the recorded owner is provably dead**: same boot
//! id, same pid namespace, not this process, and no `/proc/<pid>`. It waits
//! once more and re-reads the record before removing, so that a writer that
//! has just taken the lock (and is about to record itself) is not robbed.
//! Removing the file makes the next attempt lock a fresh file. In every
//! other case (owner alive, record missing or unreadable, other machine,
//! other pid namespace, no `/proc`) the open fails with
//! [`IndexError::WriterLocked`] and no file is touched: deleting the lock of
//! a live writer would let two writers corrupt the index.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use tantivy::directory::error::LockError;
use tantivy::directory::{Directory, Lock, MmapDirectory};
use tantivy::{Index, IndexWriter, TantivyDocument, TantivyError};

use crate::IndexError;

/// tantivy's writer lock file.
pub(crate) const WRITER_LOCK_FILE: &str = ".tantivy-writer.lock";
/// tantivy's meta (reader reload) lock file.
pub(crate) const META_LOCK_FILE: &str = ".tantivy-meta.lock";
/// Record of the process that last opened the index for writing.
pub(crate) const OWNER_FILE: &str = ".guildhall-writer.owner";

/// Attempts made on a busy lock before deciding what to do about it.
const RETRY_ATTEMPTS: u32 = 20;
/// Delay between attempts (the whole window is about one second).
const RETRY_DELAY: Duration = Duration::from_millis(50);
/// Extra wait before removing a lock file whose owner looks dead.
const CONFIRM_DELAY: Duration = Duration::from_millis(250);
/// Memory budget of the single indexing thread.
const WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// Identity of a writer process, as recorded in [`OWNER_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub boot_id: Option<String>,
    pub pid_ns: Option<String>,
}

impl Owner {
    /// The current process.
    pub(crate) fn current() -> Self {
        Owner {
            pid: std::process::id(),
            boot_id: fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            pid_ns: fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.display().to_string())
                .filter(|s| !s.is_empty()),
        }
    }

    fn render(&self) -> String {
        let mut out = format!("pid={}\n", self.pid);
        if let Some(boot) = &self.boot_id {
            out.push_str(&format!("boot_id={boot}\n"));
        }
        if let Some(ns) = &self.pid_ns {
            out.push_str(&format!("pid_ns={ns}\n"));
        }
        out
    }

    fn parse(text: &str) -> Option<Self> {
        let mut pid = None;
        let mut boot_id = None;
        let mut pid_ns = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => pid = v.trim().parse::<u32>().ok(),
                Some(("boot_id", v)) => boot_id = Some(v.trim().to_owned()),
                Some(("pid_ns", v)) => pid_ns = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        Some(Owner {
            pid: pid?,
            boot_id,
            pid_ns,
        })
    }

    /// Reads the owner record of the index in `dir`, if there is a readable one.
    pub(crate) fn read(dir: &Path) -> Option<Self> {
        fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|t| Self::parse(&t))
    }

    /// Records this owner for the index in `dir` (write then rename, so a
    /// reader never sees half a record).
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{OWNER_FILE}.tmp"));
        fs::write(&tmp, self.render())?;
        fs::rename(&tmp, dir.join(OWNER_FILE))
    }

    /// True only when this process certainly no longer exists: it ran on
    /// this boot of this machine, in our pid namespace, is not us, and has
    /// no `/proc` entry. Anything uncertain counts as alive.
    pub(crate) fn is_provably_dead(&self) -> bool {
        let me = Owner::current();
        if self.pid == me.pid {
            return false;
        }
        let same_boot = matches!((&self.boot_id, &me.boot_id), (Some(a), Some(b)) if a == b);
        let same_ns = matches!((&self.pid_ns, &me.pid_ns), (Some(a), Some(b)) if a == b);
        same_boot
            && same_ns
            && Path::new("/proc/self").exists()
            && !Path::new("/proc").join(self.pid.to_string()).exists()
    }
}

/// Takes and immediately releases `file` as a non-blocking lock.
/// `Ok(true)` when it was free.
fn try_lock(dir: &MmapDirectory, file: &str) -> Result<bool, IndexError> {
    let lock = Lock {
        filepath: PathBuf::from(file),
        is_blocking: false,
    };
    match dir.acquire_lock(&lock) {
        Ok(guard) => {
            drop(guard);
            Ok(true)
        }
        Err(LockError::LockBusy) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Tries `file` for the whole retry window. `Ok(true)` once it was free.
fn wait_for_lock(dir: &MmapDirectory, file: &str) -> Result<bool, IndexError> {
    for attempt in 0..RETRY_ATTEMPTS {
        if try_lock(dir, file)? {
            return Ok(true);
        }
        if attempt + 1 < RETRY_ATTEMPTS {
            thread::sleep(RETRY_DELAY);
        }
    }
    Ok(false)
}

/// Makes sure neither lock of the index in `path` is held by a dead process
/// (see the module documentation for the exact rule). Returns
/// [`IndexError::WriterLocked`] when a lock is held by a live or unknown
/// process.
pub(crate) fn recover_stale_locks(dir: &MmapDirectory, path: &Path) -> Result<(), IndexError> {
    for file in [WRITER_LOCK_FILE, META_LOCK_FILE] {
        if wait_for_lock(dir, file)? {
            continue;
        }
        let owner = Owner::read(path);
        let dead = match owner {
            Some(o) if o.is_provably_dead() => o,
            other => {
                return Err(IndexError::WriterLocked {
                    owner: other.map(|o| o.pid),
                })
            }
        };
        thread::sleep(CONFIRM_DELAY);
        let again = Owner::read(path);
        if again.as_ref() != Some(&dead) {
            return Err(IndexError::WriterLocked {
                owner: again.map(|o| o.pid),
            });
        }
        if try_lock(dir, file)? {
            continue;
        }
        match fs::remove_file(path.join(file)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if !try_lock(dir, file)? {
            return Err(IndexError::WriterLocked {
                owner: Some(dead.pid),
            });
        }
    }
    Ok(())
}

/// Opens the one writer of `index`, retrying while the lock is busy, and
/// records this process as the owner in `owner_dir` (on-disk indexes only).
pub(crate) fn acquire_writer(
    index: &Index,
    owner_dir: Option<&Path>,
) -> Result<IndexWriter<TantivyDocument>, IndexError> {
    for attempt in 0..RETRY_ATTEMPTS {
        match index.writer_with_num_threads(1, WRITER_MEMORY_BYTES) {
            Ok(writer) => {
                if let Some(dir) = owner_dir {
                    Owner::current().write(dir)?;
                }
                return Ok(writer);
            }
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                if attempt + 1 < RETRY_ATTEMPTS {
                    thread::sleep(RETRY_DELAY);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(IndexError::WriterLocked {
        owner: owner_dir.and_then(Owner::read).map(|o| o.pid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IndexError, SearchRequest, TicketDoc, TicketIndex};
    use tantivy::directory::INDEX_WRITER_LOCK;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// An owner record for a process of this machine and pid namespace that
    /// cannot exist (pids never reach `i32::MAX` on Linux).
    fn dead_owner() -> Owner {
        Owner {
            pid: i32::MAX as u32,
            ..Owner::current()
        }
    }

    fn seed(dir: &Path) -> Result<(), IndexError> {
        let index = TicketIndex::open_or_create(dir)?;
        index.upsert(&TicketDoc {
            id: 1,
            project: "p".into(),
            title: "survivor".into(),
            body: String::new(),
            answer: None,
            tags: Vec::new(),
            status: "open".into(),
            kind: "bug".into(),
            created: chrono::DateTime::UNIX_EPOCH,
            resolved: None,
            private: false,
            requester_id: 1,
        })?;
        index.commit()
    }

    fn finds_survivor(index: &TicketIndex) -> Result<bool, IndexError> {
        let req = SearchRequest {
            query: "survivor".into(),
            limit: 5,
            ..SearchRequest::default()
        };
        Ok(index.search(&req)?.hits.iter().any(|h| h.id == 1))
    }

    /// Holds `file` the way a writer whose lock outlived it would.
    fn hold(dir: &Path, file: &str) -> Result<tantivy::directory::DirectoryLock, IndexError> {
        let lock = Lock {
            filepath: PathBuf::from(file),
            is_blocking: false,
        };
        Ok(MmapDirectory::open(dir)?.acquire_lock(&lock)?)
    }

    #[test]
    fn owner_records_round_trip() -> TestResult {
        let dir = tempfile::tempdir()?;
        assert_eq!(Owner::read(dir.path()), None);
        let me = Owner::current();
        me.write(dir.path())?;
        assert_eq!(Owner::read(dir.path()), Some(me.clone()));
        assert!(!me.is_provably_dead(), "this process is alive");
        assert_eq!(Owner::parse("garbage"), None);
        assert_eq!(Owner::parse("pid=12\n").map(|o| o.pid), Some(12));
        Ok(())
    }

    #[test]
    fn liveness_is_only_decided_on_this_boot_and_pid_namespace() {
        let dead = dead_owner();
        if dead.boot_id.is_none() || dead.pid_ns.is_none() {
            // No /proc: nothing is ever declared dead.
            assert!(!dead.is_provably_dead());
            return;
        }
        assert!(dead.is_provably_dead());
        let other_boot = Owner {
            boot_id: Some("another-boot".into()),
            ..dead.clone()
        };
        assert!(!other_boot.is_provably_dead());
        let other_ns = Owner {
            pid_ns: Some("pid:[1]".into()),
            ..dead.clone()
        };
        assert!(!other_ns.is_provably_dead());
        let unknown = Owner {
            boot_id: None,
            ..dead
        };
        assert!(!unknown.is_provably_dead());
    }

    #[test]
    fn a_lock_held_past_its_dead_owner_is_recovered() -> TestResult {
        let dir = tempfile::tempdir()?;
        seed(dir.path())?;
        let stuck = hold(dir.path(), WRITER_LOCK_FILE)?;
        dead_owner().write(dir.path())?;
        let opened = TicketIndex::open_or_create(dir.path());
        if dead_owner().is_provably_dead() {
            let index = opened?;
            assert!(finds_survivor(&index)?);
            assert_eq!(Owner::read(dir.path()), Some(Owner::current()));
        } else {
            assert!(matches!(opened, Err(IndexError::WriterLocked { .. })));
        }
        drop(stuck);
        Ok(())
    }

    #[test]
    fn a_stuck_meta_lock_of_a_dead_owner_is_recovered() -> TestResult {
        let dir = tempfile::tempdir()?;
        seed(dir.path())?;
        let stuck = hold(dir.path(), META_LOCK_FILE)?;
        dead_owner().write(dir.path())?;
        if dead_owner().is_provably_dead() {
            let index = TicketIndex::open_or_create(dir.path())?;
            assert!(finds_survivor(&index)?);
            index.commit()?; // reloads under the (new) meta lock
        }
        drop(stuck);
        Ok(())
    }

    #[test]
    fn a_lock_held_by_a_live_or_unknown_owner_is_left_alone() -> TestResult {
        let dir = tempfile::tempdir()?;
        seed(dir.path())?;
        let held = MmapDirectory::open(dir.path())?.acquire_lock(&INDEX_WRITER_LOCK)?;

        // Recorded owner alive (this process): refuse, keep the lock file.
        Owner::current().write(dir.path())?;
        let err = TicketIndex::open_or_create(dir.path()).err();
        assert!(
            matches!(err, Some(IndexError::WriterLocked { owner: Some(pid) }) if pid == std::process::id()),
            "{err:?}"
        );
        assert!(dir.path().join(WRITER_LOCK_FILE).exists());

        // No owner record: refuse as well.
        fs::remove_file(dir.path().join(OWNER_FILE))?;
        let err = TicketIndex::open_or_create(dir.path()).err();
        assert!(
            matches!(err, Some(IndexError::WriterLocked { owner: None })),
            "{err:?}"
        );

        // Once the holder lets go, the index opens with its documents.
        drop(held);
        let index = TicketIndex::open_or_create(dir.path())?;
        assert!(finds_survivor(&index)?);
        Ok(())
    }
}
