//! The chapter tree of one story: chapters created, edited, published, branched.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Visibility;

/// One chapter in the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChapterNode {
    /// Its parent (`None` for the root).
    pub parent: Option<String>,
    /// Its author.
    pub author: String,
    /// Its title, as last written.
    #[serde(default)]
    pub title: String,
    /// How many chapters continue it.
    pub children: u32,
    /// Whether it is published.
    pub published: bool,
}

/// The chapters of one story (stream `chapter-<story id>`), rooted at its first chapter.
///
/// The whole tree is one stream so that "branched" (a chapter whose parent already has a
/// child) is decided against every sibling: two writers continuing one chapter at once
/// conflict, and the loser is decided again as a branch.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChapterTree {
    /// The first chapter.
    pub root: Option<String>,
    /// Every chapter by id.
    pub chapters: BTreeMap<String, ChapterNode>,
}

/// What the application service read about the story before adding a chapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChapterAccess {
    /// The story exists and is not archived.
    pub story_open: bool,
    /// The author may write: the story is public, or they are its owner or a joined
    /// collaborator, or the chapter comes from a merged pull request.
    pub may_write: bool,
}

/// A chapter to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChapter {
    /// Its id.
    pub chapter_id: String,
    /// Its author.
    pub author: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub content: String,
    /// The chapter it continues (`None`: the story's first chapter).
    pub parent: Option<String>,
}

/// Why a chapter command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChapterError {
    /// The story does not exist or is archived.
    #[error("the story is not open for chapters")]
    StoryNotOpen,
    /// A non-collaborator writing in a private story.
    #[error("only collaborators may add chapters to a private story")]
    NotCollaborator,
    /// A chapter id used twice.
    #[error("chapter `{0}` already exists")]
    ChapterExists(String),
    /// A second chapter without a parent.
    #[error("the story already has its first chapter")]
    RootExists,
    /// A chapter with a parent before the story has its first chapter.
    #[error("the story has no first chapter yet")]
    NoRoot,
    /// A parent that is not in the tree.
    #[error("parent chapter `{0}` does not exist")]
    UnknownParent(String),
    /// A command on a chapter that is not in the tree.
    #[error("chapter `{0}` does not exist")]
    UnknownChapter(String),
    /// Editing someone else's chapter.
    #[error("only the chapter's author may edit it")]
    NotAuthor,
    /// Publishing twice.
    #[error("chapter `{0}` is already published")]
    AlreadyPublished(String),
    /// An empty title or text.
    #[error("a chapter needs a title and some text")]
    Empty,
}

#[aggregate(category = "chapter", error = ChapterError, snapshot_every = 100)]
impl ChapterTree {
    /// A chapter was written: the story's first, or a continuation of `parent`.
    #[event(name = "chapter.created")]
    fn created(
        &mut self,
        story_id: String,
        chapter_id: String,
        author: String,
        title: String,
        content: String,
        parent: Option<String>,
        at: DateTime<Utc>,
    ) {
        if let Some(p) = parent.as_ref().and_then(|p| self.chapters.get_mut(p)) {
            p.children += 1;
        }
        if parent.is_none() {
            self.root = Some(chapter_id.clone());
        }
        self.chapters.insert(
            chapter_id,
            ChapterNode {
                parent,
                author,
                title,
                children: 0,
                published: false,
            },
        );
    }

    /// The chapter just created is an alternative continuation: its parent already had one.
    #[event(name = "chapter.branched")]
    fn branched(
        &mut self,
        story_id: String,
        chapter_id: String,
        parent: String,
        author: String,
        parent_author: String,
        at: DateTime<Utc>,
    ) {
    }

    /// The chapter's author changed it.
    #[event(name = "chapter.edited")]
    fn edited(
        &mut self,
        story_id: String,
        chapter_id: String,
        title: String,
        content: String,
        at: DateTime<Utc>,
    ) {
        if let Some(c) = self.chapters.get_mut(&chapter_id) {
            c.title = title;
        }
    }

    /// The chapter was published, with its title and the story's visibility at that moment.
    /// Version 1 recorded neither; those events read as an empty title and no visibility
    /// (not known to be public).
    #[event(
        name = "chapter.published",
        version = 2,
        upcast(from = 1, with = published_v1_to_v2)
    )]
    fn published(
        &mut self,
        story_id: String,
        chapter_id: String,
        title: String,
        visibility: Option<Visibility>,
        at: DateTime<Utc>,
    ) {
        if let Some(c) = self.chapters.get_mut(&chapter_id) {
            c.published = true;
        }
    }

    /// Adds a chapter; when its parent already has a child it is also a branch.
    pub fn create(
        &self,
        story_id: &str,
        access: ChapterAccess,
        chapter: &NewChapter,
        now: DateTime<Utc>,
    ) -> Result<Vec<ChapterTreeEvent>, ChapterError> {
        if !access.story_open {
            return Err(ChapterError::StoryNotOpen);
        }
        if !access.may_write {
            return Err(ChapterError::NotCollaborator);
        }
        if chapter.title.trim().is_empty() || chapter.content.trim().is_empty() {
            return Err(ChapterError::Empty);
        }
        if self.chapters.contains_key(&chapter.chapter_id) {
            return Err(ChapterError::ChapterExists(chapter.chapter_id.clone()));
        }
        let parent = match &chapter.parent {
            None if self.root.is_some() => return Err(ChapterError::RootExists),
            None => None,
            Some(_) if self.root.is_none() => return Err(ChapterError::NoRoot),
            Some(p) => Some((
                p,
                self.chapters
                    .get(p)
                    .ok_or_else(|| ChapterError::UnknownParent(p.clone()))?,
            )),
        };
        let mut events = vec![ChapterTreeEvent::Created {
            story_id: story_id.to_owned(),
            chapter_id: chapter.chapter_id.clone(),
            author: chapter.author.clone(),
            title: chapter.title.clone(),
            content: chapter.content.clone(),
            parent: chapter.parent.clone(),
            at: now,
        }];
        if let Some((parent_id, node)) = parent.filter(|(_, node)| node.children > 0) {
            events.push(ChapterTreeEvent::Branched {
                story_id: story_id.to_owned(),
                chapter_id: chapter.chapter_id.clone(),
                parent: parent_id.clone(),
                author: chapter.author.clone(),
                parent_author: node.author.clone(),
                at: now,
            });
        }
        Ok(events)
    }

    /// The author edits a chapter.
    pub fn edit(
        &self,
        story_id: &str,
        chapter_id: &str,
        by: &str,
        title: &str,
        content: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<ChapterTreeEvent>, ChapterError> {
        let node = self.node(chapter_id)?;
        if node.author != by {
            return Err(ChapterError::NotAuthor);
        }
        if title.trim().is_empty() || content.trim().is_empty() {
            return Err(ChapterError::Empty);
        }
        Ok(vec![ChapterTreeEvent::Edited {
            story_id: story_id.to_owned(),
            chapter_id: chapter_id.to_owned(),
            title: title.to_owned(),
            content: content.to_owned(),
            at: now,
        }])
    }

    /// The author publishes a chapter.
    pub fn publish(
        &self,
        story_id: &str,
        chapter_id: &str,
        by: &str,
        visibility: Visibility,
        now: DateTime<Utc>,
    ) -> Result<Vec<ChapterTreeEvent>, ChapterError> {
        let node = self.node(chapter_id)?;
        if node.author != by {
            return Err(ChapterError::NotAuthor);
        }
        if node.published {
            return Err(ChapterError::AlreadyPublished(chapter_id.to_owned()));
        }
        Ok(vec![ChapterTreeEvent::Published {
            story_id: story_id.to_owned(),
            chapter_id: chapter_id.to_owned(),
            title: node.title.clone(),
            visibility: Some(visibility),
            at: now,
        }])
    }

    fn node(&self, chapter_id: &str) -> Result<&ChapterNode, ChapterError> {
        self.chapters
            .get(chapter_id)
            .ok_or_else(|| ChapterError::UnknownChapter(chapter_id.to_owned()))
    }
}

/// `chapter.published` v1 (`story_id`, `chapter_id`, `at`) to v2: the title and the story's
/// visibility were not recorded.
fn published_v1_to_v2(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.entry("title").or_insert_with(|| "".into());
        o.entry("visibility").or_insert(serde_json::Value::Null);
    }
    v
}
