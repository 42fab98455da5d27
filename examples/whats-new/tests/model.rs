//! The receiver's model through its inbox: each event once, unknown names skipped, unknown
//! versions refused with nothing written, chapters that come before their story counted.

use recount::integration::IntegrationEvent;
use recount::{Cursor, StreamId};
use recount_relay::inbox::{Handled, Inbox, SqliteInbox};
use serde_json::json;
use whats_new::WhatsNew;

fn event(name: &str, version: u32, payload: serde_json::Value) -> IntegrationEvent {
    IntegrationEvent {
        id: uuid::Uuid::now_v7(),
        name: name.into(),
        version,
        payload: payload.to_string(),
        correlation_id: None,
        causation_id: None,
        source: StreamId::new("story", "s1").unwrap(),
        source_version: 1,
        cursor: Cursor::from_position(1),
        occurred_at: chrono::Utc::now(),
    }
}

fn story() -> IntegrationEvent {
    event(
        "story.published",
        1,
        json!({ "story_id": "s1", "title": "Dune", "genre": "sci_fi",
                "published_at": "2025-01-02T03:04:05Z" }),
    )
}

fn chapter(id: &str, at: &str) -> IntegrationEvent {
    event(
        "chapter.published",
        1,
        json!({ "story_id": "s1", "chapter_id": id, "title": "One", "published_at": at }),
    )
}

async fn open() -> (tempfile::TempDir, SqliteInbox<WhatsNew>) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = SqliteInbox::open(dir.path().join("m.db"), WhatsNew).unwrap();
    inbox.read(WhatsNew::create_tables).await.unwrap();
    (dir, inbox)
}

async fn latest(
    inbox: &SqliteInbox<WhatsNew>,
    genre: Option<&'static str>,
) -> Vec<whats_new::NewStory> {
    inbox
        .read(move |c| whats_new::latest(c, genre, 10))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let (_dir, inbox) = open().await;
    let c = chapter("c1", "2025-01-03T00:00:00Z");
    assert_eq!(inbox.receive(&story()).await.unwrap(), Handled::Done);
    assert_eq!(inbox.receive(&c).await.unwrap(), Handled::Done);
    assert_eq!(inbox.receive(&c).await.unwrap(), Handled::Duplicate);
    let stories = latest(&inbox, Some("sci_fi")).await;
    assert_eq!(stories.len(), 1);
    assert_eq!(stories[0].chapters, 1);
    assert_eq!(stories[0].last_activity, "2025-01-03T00:00:00.000000Z");
    assert!(latest(&inbox, Some("horror")).await.is_empty());
}

#[tokio::test]
async fn chapters_published_before_their_story_count_once_it_arrives() {
    let (_dir, inbox) = open().await;
    inbox
        .receive(&chapter("c1", "2025-01-04T00:00:00Z"))
        .await
        .unwrap();
    assert!(latest(&inbox, None).await.is_empty(), "no story yet");
    inbox.receive(&story()).await.unwrap();
    let stories = latest(&inbox, None).await;
    assert_eq!(
        (stories[0].chapters, stories[0].last_activity.as_str()),
        (1, "2025-01-04T00:00:00.000000Z")
    );
}

#[tokio::test]
async fn unknown_names_are_skipped_and_unknown_versions_refused_with_nothing_written() {
    let (_dir, inbox) = open().await;
    let later = event("story.renamed", 1, json!({ "story_id": "s1" }));
    assert_eq!(inbox.receive(&later).await.unwrap(), Handled::Done);
    let v2 = event(
        "story.published",
        2,
        json!({ "story_id": "s1", "title": "Dune", "genre": "sci_fi",
                "published_at": "2025-01-02T03:04:05Z" }),
    );
    let err = inbox.receive(&v2).await.unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
    assert!(
        !inbox.processed(v2.id).await.unwrap(),
        "a refused event leaves no id"
    );
    assert!(latest(&inbox, None).await.is_empty());
    let bad = event("story.published", 1, json!({ "story_id": "s1" }));
    assert!(
        inbox.receive(&bad).await.is_err(),
        "a payload without its fields is refused"
    );
    assert!(!inbox.processed(bad.id).await.unwrap());
}
