//! What leaves StoryChain: the four integration events, for public stories only, with
//! payloads of their own; nothing else.

use chrono::{DateTime, TimeZone, Utc};
use recount::testing::MappingTest;
use serde_json::json;
use storychain::domain::{
    ChapterTree, ChapterTreeEvent, Genre, PullRequest, PullRequestEvent, Story, StoryEvent, User,
    UserEvent, Visibility,
};
use storychain::integration;

fn t() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
}

fn published(story: &str, title: &str, visibility: Option<Visibility>) -> StoryEvent {
    StoryEvent::Published {
        story_id: story.into(),
        title: title.into(),
        genre: Some(Genre::Fantasy),
        visibility,
        at: t(),
    }
}

fn chapter(story: &str, chapter: &str, visibility: Option<Visibility>) -> ChapterTreeEvent {
    ChapterTreeEvent::Published {
        story_id: story.into(),
        chapter_id: chapter.into(),
        title: format!("Chapter {chapter}"),
        visibility,
        at: t(),
    }
}

fn merged(pr: &str, visibility: Option<Visibility>) -> PullRequestEvent {
    PullRequestEvent::Merged {
        pr_id: pr.into(),
        story_id: "s1".into(),
        author: "bob".into(),
        merged_by: "ada".into(),
        chapter_id: "c2".into(),
        visibility,
        at: t(),
    }
}

#[test]
fn public_stories_chapters_merges_and_registrations_leave_with_their_public_payloads() {
    MappingTest::new(integration::map())
        .given::<User>(
            "u1",
            [UserEvent::Registered {
                user_id: "u1".into(),
                username: "ada".into(),
                display_name: "Ada".into(),
                at: t(),
            }],
        )
        .given::<Story>("s1", [published("s1", "Dune", Some(Visibility::Public))])
        .given::<ChapterTree>("s1", [chapter("s1", "c1", Some(Visibility::Public))])
        .given::<PullRequest>("p1", [merged("p1", Some(Visibility::Public))])
        .then_published([
            (
                "user.registered",
                1,
                json!({ "user_id": "u1", "username": "ada", "display_name": "Ada",
                        "registered_at": "2025-01-02T03:04:05Z" }),
            ),
            (
                "story.published",
                1,
                json!({ "story_id": "s1", "title": "Dune", "genre": "fantasy",
                        "published_at": "2025-01-02T03:04:05Z" }),
            ),
            (
                "chapter.published",
                1,
                json!({ "story_id": "s1", "chapter_id": "c1", "title": "Chapter c1",
                        "published_at": "2025-01-02T03:04:05Z" }),
            ),
            (
                "pr.merged",
                1,
                json!({ "pr_id": "p1", "story_id": "s1", "chapter_id": "c2", "author": "bob",
                        "merged_by": "ada", "merged_at": "2025-01-02T03:04:05Z" }),
            ),
        ]);
}

#[test]
fn private_stories_and_events_not_known_to_be_public_stay_inside() {
    MappingTest::new(integration::map())
        .given::<Story>(
            "s2",
            [
                published("s2", "Secret", Some(Visibility::Private)),
                published("s3", "Old", None),
            ],
        )
        .given::<ChapterTree>(
            "s2",
            [
                chapter("s2", "c1", Some(Visibility::Private)),
                chapter("s2", "c2", None),
            ],
        )
        .given::<PullRequest>("p2", [merged("p2", Some(Visibility::Private))])
        .given::<PullRequest>("p3", [merged("p3", None)])
        .then_published(Vec::<(&str, u32, serde_json::Value)>::new());
}

#[test]
fn other_domain_events_never_leave() {
    MappingTest::new(integration::map())
        .given::<Story>(
            "s1",
            [
                StoryEvent::Created {
                    story_id: "s1".into(),
                    title: "Dune".into(),
                    genre: Genre::SciFi,
                    author: "ada".into(),
                    visibility: Visibility::Public,
                    at: t(),
                },
                StoryEvent::Archived {
                    story_id: "s1".into(),
                    at: t(),
                },
            ],
        )
        .then_published(Vec::<(&str, u32, serde_json::Value)>::new());
}
