//! Webhooks: a story's owner asks for the story's events to be POSTed to a URL (stream
//! `webhook-<id>`).
//!
//! The secret signs each delivery (`sha256=` HMAC of the body); the receiver checks it. It
//! is kept in the registration event because deliveries must sign with it after any
//! restart; the events API hides it, and it is never logged.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};

/// The events about a story that others may follow (a webhook asks for some of them; a live
/// stream of the story carries them): what happens to the story, its chapters, its pull
/// requests, its collaborators, and the votes and comments on it. A reader's bookmarks and
/// reading progress are theirs, not the story's, and are never among them.
pub const STORY_EVENT_TYPES: [&str; 19] = [
    "story.details_updated",
    "story.published",
    "story.archived",
    "story.milestone_reached",
    "chapter.created",
    "chapter.branched",
    "chapter.edited",
    "chapter.published",
    "pr.opened",
    "pr.reviewed",
    "pr.merged",
    "pr.rejected",
    "collaborator.invited",
    "collaborator.joined",
    "collaborator.left",
    "collaborator.role_changed",
    "vote.cast",
    "vote.changed",
    "comment.posted",
];

/// A filter keeping [`STORY_EVENT_TYPES`].
pub fn story_events() -> recount::LogFilter {
    STORY_EVENT_TYPES
        .into_iter()
        .fold(recount::LogFilter::all(), recount::LogFilter::event_type)
}

/// The story an event is about: its payload's `story_id`, or `target.story_id` (votes,
/// comments).
///
/// Live streams call it once per subscriber and event, so it reads only these fields,
/// borrowing them where the JSON has no escapes, and skips the rest.
pub fn story_of(e: &recount::RecordedEvent) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    #[derive(Deserialize)]
    struct Target<'a> {
        #[serde(borrow)]
        story_id: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct About<'a> {
        #[serde(borrow)]
        story_id: Option<Cow<'a, str>>,
        #[serde(borrow)]
        target: Option<Target<'a>>,
    }
    let about: About<'_> = serde_json::from_str(&e.payload).ok()?;
    about.story_id.or(about.target.and_then(|t| t.story_id))
}

/// Payload fields that hold a secret, by event type: shown to no one (the events API hides
/// them).
pub const SECRET_FIELDS: [(&str, &str); 1] = [("webhook.registered", "secret")];

/// The shortest secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;
/// The longest secret accepted (bytes).
pub const MAX_SECRET_LEN: usize = 256;
/// The longest URL accepted (bytes).
pub const MAX_URL_LEN: usize = 2_048;

/// A webhook: which story, where to, which events.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// The story whose events it receives (empty: not registered).
    pub story_id: String,
    /// The user who registered it (the story's owner then).
    pub owner: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives.
    pub event_types: Vec<String>,
    /// The signing secret.
    pub secret: String,
    /// Whether it was removed.
    pub removed: bool,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("story_id", &self.story_id)
            .field("owner", &self.owner)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"<hidden>")
            .field("removed", &self.removed)
            .finish()
    }
}

/// Why a webhook command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The id is taken.
    #[error("the webhook already exists")]
    AlreadyExists,
    /// No such webhook.
    #[error("the webhook does not exist")]
    NotFound,
    /// It was removed already.
    #[error("the webhook was already removed")]
    AlreadyRemoved,
    /// Only the user who registered it may remove it.
    #[error("only the webhook's owner may do that")]
    NotOwner,
    /// Not an absolute `http` or `https` URL.
    #[error("`url` must be an absolute http or https URL of at most 2048 bytes: {0}")]
    InvalidUrl(String),
    /// No event types asked for.
    #[error("`event_types` must name at least one event type")]
    NoEventTypes,
    /// A type not offered.
    #[error("`event_types`: `{0}` is not an event type a webhook can receive")]
    UnknownEventType(String),
    /// The URL's host is not one this service delivers to.
    #[error("`url`: host `{0}` is not one this service delivers webhooks to")]
    HostNotAllowed(String),
    /// The secret is too short or too long.
    #[error("`secret` must have 16 to 256 bytes")]
    InvalidSecret,
}

/// A registration as the owner asked for it.
#[derive(Debug, Clone, Copy)]
pub struct NewWebhook<'a> {
    /// The story.
    pub story_id: &'a str,
    /// The story's owner, registering.
    pub owner: &'a str,
    /// Where to POST.
    pub url: &'a str,
    /// Which event types.
    pub event_types: &'a [String],
    /// The signing secret.
    pub secret: &'a str,
    /// The hosts webhooks may go to (`None`: any).
    pub allowed_hosts: Option<&'a [String]>,
}

/// Whether `url`'s host is in `allowed` (`None`: any host is).
pub fn host_allowed(url: &str, allowed: Option<&[String]>) -> Result<(), String> {
    let Some(allowed) = allowed else {
        return Ok(());
    };
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if allowed.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        Ok(())
    } else {
        Err(host)
    }
}

/// Whether `url` is an absolute `http`/`https` URL with a host.
fn valid_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err("too long".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme `{}`", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

#[aggregate(category = "webhook", error = WebhookError)]
impl Webhook {
    /// A webhook was registered. (The story is named `story`, not `story_id`, so nothing
    /// that follows a story's events by their `story_id` picks up the secret.)
    #[event(name = "webhook.registered")]
    fn registered(
        &mut self,
        webhook_id: String,
        story: String,
        owner: String,
        url: String,
        event_types: Vec<String>,
        secret: String,
        at: DateTime<Utc>,
    ) {
        self.story_id = story;
        self.owner = owner;
        self.url = url;
        self.event_types = event_types;
        self.secret = secret;
    }

    /// It was removed: nothing more is delivered to it.
    #[event(name = "webhook.removed")]
    fn removed(&mut self, webhook_id: String, story: String, by: String, at: DateTime<Utc>) {
        self.removed = true;
    }

    /// Registers webhook `webhook_id`; the caller has checked that `new.owner` owns the
    /// story.
    pub fn register(
        &self,
        webhook_id: &str,
        new: NewWebhook<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookEvent>, WebhookError> {
        if !self.story_id.is_empty() {
            return Err(WebhookError::AlreadyExists);
        }
        valid_url(new.url).map_err(WebhookError::InvalidUrl)?;
        host_allowed(new.url, new.allowed_hosts).map_err(WebhookError::HostNotAllowed)?;
        if new.event_types.is_empty() {
            return Err(WebhookError::NoEventTypes);
        }
        if let Some(t) = new
            .event_types
            .iter()
            .find(|t| !STORY_EVENT_TYPES.contains(&t.as_str()))
        {
            return Err(WebhookError::UnknownEventType(t.clone()));
        }
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&new.secret.len()) {
            return Err(WebhookError::InvalidSecret);
        }
        let mut event_types = new.event_types.to_vec();
        event_types.sort();
        event_types.dedup();
        Ok(vec![WebhookEvent::Registered {
            webhook_id: webhook_id.to_owned(),
            story: new.story_id.to_owned(),
            owner: new.owner.to_owned(),
            url: new.url.to_owned(),
            event_types,
            secret: new.secret.to_owned(),
            at: now,
        }])
    }

    /// Removes the webhook; only its owner may.
    pub fn remove(
        &self,
        webhook_id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookEvent>, WebhookError> {
        if self.story_id.is_empty() {
            return Err(WebhookError::NotFound);
        }
        if self.owner != by {
            return Err(WebhookError::NotOwner);
        }
        if self.removed {
            return Err(WebhookError::AlreadyRemoved);
        }
        Ok(vec![WebhookEvent::Removed {
            webhook_id: webhook_id.to_owned(),
            story: self.story_id.clone(),
            by: by.to_owned(),
            at: now,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(url: &'a str, types: &'a [String], secret: &'a str) -> NewWebhook<'a> {
        NewWebhook {
            story_id: "s1",
            owner: "u1",
            url,
            event_types: types,
            secret,
            allowed_hosts: None,
        }
    }

    #[test]
    fn registration_checks_url_types_and_secret() {
        let w = Webhook::default();
        let now = Utc::now();
        let types = vec!["pr.merged".to_owned(), "pr.merged".to_owned()];
        let secret = "0123456789abcdef";
        for bad in ["ftp://x.example/", "not a url", "http://", "/relative"] {
            assert!(
                matches!(
                    w.register("w", new(bad, &types, secret), now),
                    Err(WebhookError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            w.register("w", new("http://127.0.0.1:1/h", &[], secret), now),
            Err(WebhookError::NoEventTypes)
        );
        let unknown = vec!["user.registered".to_owned()];
        assert_eq!(
            w.register("w", new("http://127.0.0.1:1/h", &unknown, secret), now),
            Err(WebhookError::UnknownEventType("user.registered".into()))
        );
        assert_eq!(
            w.register("w", new("http://127.0.0.1:1/h", &types, "short"), now),
            Err(WebhookError::InvalidSecret)
        );
        let events = w
            .register("w", new("https://127.0.0.1:1/h", &types, secret), now)
            .unwrap();
        let WebhookEvent::Registered { event_types, .. } = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(event_types, &["pr.merged"], "deduplicated");
        assert!(!format!("{w:?}").contains(secret));
        let only_local = ["127.0.0.1".to_owned()];
        let elsewhere = NewWebhook {
            allowed_hosts: Some(&only_local),
            ..new("https://example.com/h", &types, secret)
        };
        assert_eq!(
            w.register("w", elsewhere, now),
            Err(WebhookError::HostNotAllowed("example.com".into()))
        );
        let local = NewWebhook {
            allowed_hosts: Some(&only_local),
            ..new("http://127.0.0.1:9/h", &types, secret)
        };
        assert!(w.register("w", local, now).is_ok());
    }

    #[test]
    fn the_story_is_found_at_the_top_or_in_the_target() {
        let event = |payload: &str| recount::RecordedEvent {
            id: uuid::Uuid::nil(),
            stream: recount::StreamId::new("engagement", "e1").unwrap(),
            version: 1,
            cursor: recount::Cursor::START,
            event_type: "comment.posted".into(),
            schema_version: 1,
            payload: payload.into(),
            metadata: "{}".into(),
            recorded_at: Utc::now(),
        };
        let top = event(r#"{"story_id": "s1", "text": "x"}"#);
        let nested = event(r#"{"target": {"story_id": "s2", "chapter_id": null}}"#);
        let escaped = event(r#"{"story_id": "s\u0033"}"#);
        assert_eq!(story_of(&top).as_deref(), Some("s1"));
        assert_eq!(story_of(&nested).as_deref(), Some("s2"));
        assert_eq!(story_of(&escaped).as_deref(), Some("s3"));
        assert_eq!(story_of(&event(r#"{"story": "s4"}"#)), None);
    }

    #[test]
    fn only_the_owner_removes_it_once() {
        let mut w = Webhook {
            story_id: "s1".into(),
            owner: "u1".into(),
            ..Webhook::default()
        };
        let now = Utc::now();
        assert_eq!(w.remove("w", "u2", now), Err(WebhookError::NotOwner));
        assert_eq!(w.remove("w", "u1", now).unwrap().len(), 1);
        w.removed = true;
        assert_eq!(w.remove("w", "u1", now), Err(WebhookError::AlreadyRemoved));
        assert_eq!(
            Webhook::default().remove("w", "u1", now),
            Err(WebhookError::NotFound)
        );
    }
}
