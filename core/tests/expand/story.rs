//! A sample aggregate whose expansion is checked in beside it (`story.expanded.rs`), so a
//! reviewer can read what `#[aggregate]` writes. Regenerate the expansion with
//! `RECOUNT_BLESS=1 cargo test -p recount-derive`; this file itself is compiled and run by
//! the `ui` test.

use recount::aggregate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Genre {
    Fantasy,
    Mystery,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum StoryError {
    #[error("the story is already published")]
    AlreadyPublished,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Story {
    title: String,
    genre: Option<Genre>,
    published_at: Option<u64>,
}

/// v1 had no publication time; its upcaster adds one.
fn published_v1_to_v2(mut v: Value) -> Result<Value, String> {
    v["at"] = json!(0);
    Ok(v)
}

#[aggregate(category = "story", error = StoryError, snapshot_every = 100)]
impl Story {
    /// The story was created.
    #[event(name = "story.created")]
    fn created(&mut self, title: String, genre: Genre, author: String) {
        self.title = title;
        self.genre = Some(genre);
    }

    /// The story was published.
    #[event(name = "story.published", version = 2, upcast(from = 1, with = published_v1_to_v2))]
    fn published(&mut self, at: u64) {
        self.published_at = Some(at);
    }

    /// The story was withdrawn.
    #[event]
    fn withdrawn(&mut self) {
        self.published_at = None;
    }

    /// A command: reads state, decides, never mutates.
    pub fn publish(&self, now: u64) -> Result<Vec<StoryEvent>, StoryError> {
        if self.published_at.is_some() {
            return Err(StoryError::AlreadyPublished);
        }
        Ok(vec![StoryEvent::Published { at: now }])
    }
}

fn main() {
    use recount::{Aggregate, Event};
    let created = StoryEvent::Created { title: "Dune".into(), genre: Genre::Fantasy, author: "frank".into() };
    let story = Story::replayed([created]);
    let events = story.publish(7).unwrap();
    assert_eq!(events[0].encode().unwrap().get(), r#"{"at":7}"#);
    let old = StoryEvent::decode("story.published", 1, "{}").unwrap();
    assert_eq!(old, StoryEvent::Published { at: 0 });
}
