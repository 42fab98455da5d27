//! Migrations: explicit, idempotent, safe when several processes start at once, confined to
//! the configured schema.

mod common;

use recount::{Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_postgres::{PgEventStore, PgOptions};

#[test]
fn concurrent_migrations_of_a_custom_schema_all_succeed_and_stay_in_it() {
    common::run(
        "concurrent_migrations_of_a_custom_schema_all_succeed_and_stay_in_it",
        |db| async move {
            let options = PgOptions::default().with_schema("tenant_a");
            let mut stores = Vec::new();
            for _ in 0..4 {
                stores.push(common::TestDb::store_on(&db.options, options.clone()).await);
            }
            let results = futures::future::join_all(stores.iter().map(|s| s.migrate())).await;
            for r in results {
                r.expect("every concurrent migration succeeds");
            }
            stores[0]
                .migrate()
                .await
                .expect("migrating again changes nothing");

            let mut conn = db.connection().await;
            let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'tenant_a' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
            assert_eq!(
                tables,
                [
                    "_sqlx_migrations",
                    "checkpoints",
                    "events",
                    "snapshots",
                    "streams"
                ]
            );
            let in_public: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(in_public, 0, "nothing lands in public");

            // The custom schema works, and is separate from the default one.
            let store = &stores[1];
            let s = StreamId::new("tenant", "1").unwrap();
            let e = NewEvent::new("tenant.joined", &serde_json::json!({})).unwrap();
            store
                .append(&s, ExpectedVersion::NoStream, vec![e])
                .await
                .unwrap();
            assert_eq!(
                store
                    .read_all(Cursor::START, &LogFilter::all(), 10)
                    .await
                    .unwrap()
                    .events
                    .len(),
                1
            );
            assert_eq!(
                db.store.stream_version(&s).await.unwrap(),
                0,
                "the default schema holds nothing of it"
            );

            // A database migrated by a newer Recount is refused.
            sqlx::query(
            "INSERT INTO tenant_a._sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', true, '\\x00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
            match store.migrate().await {
                Err(Error::SchemaTooNew {
                    found: 9999,
                    supported: 5,
                }) => {}
                other => panic!("expected SchemaTooNew, got {other:?}"),
            }
            for s in stores {
                s.pool().close().await;
            }
        },
    );
}

#[test]
fn schema_names_are_validated() {
    // A lazy pool never connects, but needs a runtime to exist.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    for bad in [
        "",
        "Recount",
        "1abc",
        "pg_temp",
        "a-b",
        "a\"b",
        "x; DROP TABLE y",
        &"a".repeat(64),
    ] {
        let options = PgOptions::default().with_schema(bad);
        assert!(
            matches!(
                options.validate(),
                Err(Error::InvalidInput {
                    field: "schema",
                    ..
                })
            ),
            "{bad:?}"
        );
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://localhost/x")
            .unwrap();
        assert!(PgEventStore::from_pool(pool, options).is_err(), "{bad:?}");
    }
    for good in ["recount", "tenant_42", "_x"] {
        assert!(
            PgOptions::default().with_schema(good).validate().is_ok(),
            "{good:?}"
        );
    }
}
