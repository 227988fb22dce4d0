//! Several processes open one fresh SQLite store at once (three daemons of an HA setup started
//! together, the CLI beside them): every one of them must get the migrated store. Before, each
//! read the schema version outside its migration's transaction, so all but the first failed
//! with "table ledger already exists" and the HA setup started with one instance.

use std::sync::{Arc, Barrier};

use ticketing_engine::store::SqliteStore;

#[test]
fn a_fresh_store_opened_by_many_at_once_migrates_once_and_opens_for_all() {
    for round in 0..5 {
        let dir = std::env::temp_dir().join(format!("sqlite-open-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.sqlite");
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let openers: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, path) = (barrier.clone(), path.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path).map(|s| s.schema_version().unwrap()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for opener in openers {
            let version = opener.join().unwrap();
            assert_eq!(version, Ok(SqliteStore::SCHEMA_VERSION), "round {round}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
