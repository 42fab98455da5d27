//! Every connection of the store terminated by the server (`pg_terminate_backend`, only this
//! test's database), again and again, while a read model, a side effect and a process
//! manager run live: each recovers unattended; nothing is lost or doubled.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[test]
fn consumers_recover_from_connections_terminated_25_times() {
    common::run(
        "consumers_recover_from_terminated_connections",
        |db| async move {
            let terminated = Arc::new(AtomicU64::new(0));
            let admin = Arc::new(tokio::sync::Mutex::new(db.connection().await));
            let name = db.name.clone();
            let counter = terminated.clone();
            recount::testing::runners::consumers_of_every_kind_recover_from(
                db.store.clone(),
                25,
                move || {
                    let (admin, name, counter) = (admin.clone(), name.clone(), counter.clone());
                    async move {
                        let mut admin = admin.lock().await;
                        let killed = sqlx::query_scalar::<_, i64>(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                        )
                        .bind(name)
                        .fetch_one(&mut *admin)
                        .await
                        .expect("terminate the store's connections");
                        if killed > 0 {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                },
            )
            .await;
            assert!(
                terminated.load(Ordering::Relaxed) >= 20,
                "connections were terminated in at least 20 rounds: {}",
                terminated.load(Ordering::Relaxed)
            );
        },
    );
}
