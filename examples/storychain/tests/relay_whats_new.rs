//! StoryChain to another service, per broker: `storychain relay --to <broker>` runs as a child
//! process, the example receiving service `whats-new` follows the broker (through its library,
//! in this process), and its own model ends up with exactly the public stories, chapters, merges and
//! members; nothing of a private story crosses, events appended while both run arrive, each
//! event is handled once, and SIGTERM stops both cleanly.
//!
//! Each run uses names of its own on the broker (publisher and group), and removes them when
//! it passes. Under `CI` a broker that does not answer on 127.0.0.1 fails the test; elsewhere
//! the test prints one line and returns.
#![cfg(any(feature = "nats", feature = "redis", feature = "rabbitmq"))]

use recount::EventStore;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use storychain::domain::{Genre, Verdict, Visibility};
use storychain::StoryChain;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use whats_new::{Follow, Source};

fn up(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let open = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok();
    if !open {
        assert!(
            std::env::var_os("CI").is_none(),
            "nothing answers on 127.0.0.1:{port}, and CI needs it"
        );
        eprintln!("skipped: nothing answers on 127.0.0.1:{port}");
    }
    open
}

fn unique(tag: &str) -> String {
    format!("t{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A child process killed (SIGKILL) if the test fails before stopping it.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        Proc(
            // The SQLite file the test names, whatever the environment says.
            cmd.env_remove("DATABASE_URL")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the child starts"),
        )
    }

    /// SIGTERM, then its exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the child did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Public {
    story: String,
    chapters: Vec<String>,
}

/// Two users; a public fantasy story with a published chapter and a merged pull request; a
/// private horror story, published, with a published chapter.
async fn scene(app: &StoryChain) -> Public {
    let ada = app.register("ada", "Ada").await.unwrap().id;
    let bob = app.register("bob", "Bob").await.unwrap().id;
    let story = app
        .create_story(&ada, "Dune Again", Genre::Fantasy, Visibility::Public)
        .await
        .unwrap()
        .id;
    let root = app
        .add_chapter(&story, &ada, "Arrakis", "Sand, everywhere.", None)
        .await
        .unwrap()
        .id;
    app.publish_chapter(&story, &root, &ada).await.unwrap();
    app.publish_story(&story, &ada).await.unwrap();
    let pr = app
        .open_pr(&story, &root, &bob, "Spice", "A second chapter.")
        .await
        .unwrap()
        .id;
    app.review_pr(&pr, &ada, Verdict::Approve, "yes")
        .await
        .unwrap();
    app.merge_pr(&pr, &ada).await.unwrap();

    let secret = app
        .create_story(&ada, "Secret Plans", Genre::Horror, Visibility::Private)
        .await
        .unwrap()
        .id;
    let hidden = app
        .add_chapter(&secret, &ada, "Hidden Room", "Nobody knows.", None)
        .await
        .unwrap()
        .id;
    app.publish_chapter(&secret, &hidden, &ada).await.unwrap();
    app.publish_story(&secret, &ada).await.unwrap();
    Public {
        story,
        chapters: vec![root],
    }
}

fn model(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).unwrap();
    whats_new::WhatsNew::create_tables(&conn).unwrap();
    conn
}

/// Waits until the receiver's model passes `done`, or fails after 60 s.
async fn wait_for(db: &Path, what: &str, done: impl Fn(&rusqlite::Connection) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if db.exists() && done(&model(db)) {
            return;
        }
        assert!(Instant::now() < deadline, "the receiver never saw {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every text column of every table of the receiver's database, for a search.
fn everything(conn: &rusqlite::Connection) -> String {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut all = String::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                if let Ok(s) = row.get::<_, String>(i) {
                    all.push_str(&s);
                    all.push('\n');
                }
            }
        }
    }
    all
}

/// The receiver connected (its consumer, group or bound queue declared), then running in a
/// task.
async fn start_receiver(
    follow: &Follow,
    stop: &CancellationToken,
) -> JoinHandle<recount::Result<()>> {
    let receiver = follow.connect().await.expect("the receiver connects");
    tokio::spawn(receiver.run(stop.clone()))
}

async fn end_to_end(broker: &str, port: u16) {
    if !up(port) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("storychain.db");
    let receiver_db = dir.path().join("whats-new.db");
    let (publisher, group) = (unique("p"), unique("g"));
    let app = StoryChain::open(&db).await.unwrap();
    let public = scene(&app).await;

    // The receiver first (RabbitMQ keeps only what reaches a bound queue), then the relay.
    let source = match broker {
        "nats" => Source::Nats,
        "redis" => Source::Redis,
        _ => Source::Rabbitmq,
    };
    let follow = Follow {
        publisher: publisher.clone(),
        group: group.clone(),
        ..Follow::new(source, &receiver_db)
    };
    let stop = CancellationToken::new();
    let start_relay = || {
        Proc::spawn(Command::new(env!("CARGO_BIN_EXE_storychain")).args([
            "relay",
            "--to",
            broker,
            "--name",
            &publisher,
            "--db",
            db.to_str().unwrap(),
        ]))
    };
    let (relay, receiver) = if broker == "rabbitmq" {
        // RabbitMQ keeps only what reaches a bound queue: the receiver first.
        let receiver = start_receiver(&follow, &stop).await;
        (start_relay(), receiver)
    } else {
        // JetStream and Redis keep the stream: the receiver comes late and reads the backlog
        // (the relay makes the stream).
        let relay = start_relay();
        let checkpoint = format!("relay:{publisher}-{broker}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while app
            .store()
            .load_checkpoint(&checkpoint)
            .await
            .unwrap()
            .is_none()
        {
            assert!(Instant::now() < deadline, "the relay never published");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (relay, start_receiver(&follow, &stop).await)
    };

    wait_for(
        &receiver_db,
        "the public story, its merge and both members",
        |c| {
            count(c, "SELECT count(*) FROM whats_new_merges") == 1
                && count(c, "SELECT count(*) FROM whats_new_members") == 2
                && count(c, "SELECT count(*) FROM whats_new_stories") >= 1
        },
    )
    .await;

    // Appended while both run: arrives live.
    let ada = app.user_id_of("ada").await.unwrap().unwrap();
    let next = app
        .add_chapter(
            &public.story,
            &ada,
            "Sandworms",
            "They are big.",
            Some(&public.chapters[0]),
        )
        .await
        .unwrap()
        .id;
    app.publish_chapter(&public.story, &next, &ada)
        .await
        .unwrap();
    app.register("cyd", "Cyd").await.unwrap();
    wait_for(&receiver_db, "the live chapter and member", |c| {
        count(c, "SELECT count(*) FROM whats_new_chapters") == 2
            && count(c, "SELECT count(*) FROM whats_new_members") == 3
    })
    .await;

    assert!(
        relay.terminate().success(),
        "the relay stops cleanly on SIGTERM"
    );
    stop.cancel();
    receiver
        .await
        .unwrap()
        .expect("the receiver ran until stopped");

    let conn = model(&receiver_db);
    let stories = whats_new::latest(&conn, None, 10).unwrap();
    assert_eq!(stories.len(), 1, "{stories:?}");
    let s = &stories[0];
    assert_eq!(
        (s.story_id.as_str(), s.title.as_str(), s.genre.as_str()),
        (public.story.as_str(), "Dune Again", "fantasy")
    );
    assert_eq!((s.chapters, s.merged), (2, 1), "{s:?}");
    assert_eq!(whats_new::latest(&conn, Some("horror"), 10).unwrap(), []);
    let seen = everything(&conn);
    for private in ["Secret Plans", "Hidden Room", "Nobody knows"] {
        assert!(
            !seen.contains(private),
            "`{private}` crossed to the receiver"
        );
    }
    // Exactly the public events, each handled once: 1 story, 2 chapters, 1 merge, 3 members.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM recount_inbox WHERE handler = 'whats-new'"
        ),
        7
    );
    cleanup(broker, &publisher, &group).await;
}

async fn cleanup(broker: &str, publisher: &str, group: &str) {
    match broker {
        #[cfg(feature = "nats")]
        "nats" => {
            if let Ok(c) = async_nats::connect("nats://127.0.0.1:4222").await {
                let js = async_nats::jetstream::new(c);
                let _ = js.delete_stream(publisher).await;
                let _ = js.delete_stream(format!("{group}-dead")).await;
            }
        }
        #[cfg(feature = "redis")]
        "redis" => {
            if let Ok(client) = redis::Client::open("redis://127.0.0.1:6379") {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{publisher}:*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: redis::RedisResult<()> =
                            redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
                    }
                }
            }
        }
        #[cfg(feature = "rabbitmq")]
        "rabbitmq" => {
            use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
            let props = lapin::ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio);
            if let Ok(conn) =
                lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", props).await
            {
                if let Ok(ch) = conn.create_channel().await {
                    let dead = format!("{group}-dead");
                    for q in [group, dead.as_str()] {
                        let _ = ch.queue_delete(q, QueueDeleteOptions::default()).await;
                    }
                    for x in [publisher, dead.as_str()] {
                        let _ = ch
                            .exchange_delete(x, ExchangeDeleteOptions::default())
                            .await;
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_carries_the_public_story_to_whats_new() {
    end_to_end("nats", 4222).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_carries_the_public_story_to_whats_new() {
    end_to_end("redis", 6379).await;
}

#[cfg(feature = "rabbitmq")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_carries_the_public_story_to_whats_new() {
    end_to_end("rabbitmq", 5672).await;
}
