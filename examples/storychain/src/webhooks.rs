//! Webhook delivery: a [`SideEffect`] on the framework's runner, so retries with backoff,
//! dead letters, replays and status are the runner's, as for every consumer.
//!
//! Each delivery is a `POST` of a JSON [`Envelope`] with these headers:
//!
//! | header | value |
//! |---|---|
//! | `X-StoryChain-Event-Id` | the event's id: the same on every attempt, the receiver's idempotency key |
//! | `X-StoryChain-Event-Type` | the event's type |
//! | `X-StoryChain-Webhook-Id` | the webhook's id |
//! | `X-StoryChain-Signature` | `sha256=` and the lowercase hex HMAC-SHA256 of the body, keyed with the webhook's secret |
//!
//! A receiver answers 2xx to accept. Anything else (another status, a refused connection, no
//! answer within the timeout) fails the attempt: the runner tries again with backoff, then
//! parks the event as a dead letter, listed and retried through the admin API. Delivery is at
//! least once: the receiver deduplicates by event id.
//!
//! Which webhooks get an event: those of the event's story (its payload's `story_id`, or
//! `target.story_id` for votes and comments) that asked for its type, registered before it
//! and not removed before it (by log position, so a restart or a replay decides alike).

use crate::domain::{story_events, story_of};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use recount::projection::SideEffect;
use recount::{BoxError, Cursor, EventQuery, EventStore, LogFilter, RecordedEvent};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// The consumer's name (its checkpoint and dead-letter stream; `POST
/// /admin/handlers/webhooks/replay`).
pub const WEBHOOKS: &str = "webhooks";

/// What is POSTed to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event's id (also the `X-StoryChain-Event-Id` header).
    pub id: uuid::Uuid,
    /// The webhook delivered to.
    pub webhook_id: String,
    /// The story.
    pub story_id: String,
    /// The event's type, e.g. `pr.merged`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its stream, e.g. `pr-0192…`.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its position in the log.
    pub cursor: String,
    /// When it was recorded.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// The event's payload.
    pub payload: serde_json::Value,
}

/// The `X-StoryChain-Signature` value for `body` under `secret`: `sha256=<hex>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `header` is the signature of `body` under `secret` (compared in constant time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    use subtle::ConstantTimeEq;
    signature(secret, body)
        .as_bytes()
        .ct_eq(header.as_bytes())
        .into()
}

/// One webhook as delivery sees it.
struct Hook {
    story_id: String,
    url: String,
    event_types: Vec<String>,
    secret: String,
    /// Registered at this position: only later events are delivered.
    from: Cursor,
    /// Removed at this position: only earlier events are delivered.
    until: Option<Cursor>,
}

#[derive(Deserialize)]
struct Registered {
    webhook_id: String,
    story: String,
    url: String,
    event_types: Vec<String>,
    secret: String,
}

#[derive(Deserialize)]
struct Removed {
    webhook_id: String,
}

/// Delivers story events to the webhooks registered for them. Build it with
/// [`WebhookDelivery::load`] and run it as [`Effects`](recount::projection::Effects).
pub struct WebhookDelivery {
    client: reqwest::Client,
    hooks: Mutex<HashMap<String, Hook>>,
    /// Deliveries done for an event that has not succeeded for all its webhooks yet, so the
    /// runner's retry of the event does not POST again to the ones that accepted it.
    done: Mutex<HashSet<(uuid::Uuid, String)>>,
    /// The hosts deliveries may go to (`None`: any).
    allowed_hosts: Option<Vec<String>>,
}

impl std::fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDelivery")
            .field("webhooks", &lock(&self.hooks).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WebhookDelivery {
    /// Delivery with a `timeout` per attempt, only to `allowed_hosts` (`None`: any),
    /// knowing every webhook registered in `store`'s log so far (it learns later ones from
    /// the log as it goes).
    pub async fn load<S: EventStore>(
        store: &S,
        timeout: Duration,
        allowed_hosts: Option<Vec<String>>,
    ) -> recount::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("storychain-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| recount::Error::invalid("webhook client", e.to_string()))?;
        let delivery = WebhookDelivery {
            client,
            hooks: Mutex::default(),
            done: Mutex::default(),
            allowed_hosts,
        };
        let mut query = EventQuery::default().filter(LogFilter::all().category("webhook"));
        loop {
            let batch = store.query(&query, 1_000).await?;
            if batch.events.is_empty() && batch.last_seen == query.after {
                break;
            }
            for event in &batch.events {
                delivery.learn(event)?;
            }
            query.after = batch.last_seen;
        }
        Ok(delivery)
    }

    /// Takes in a webhook's registration or removal.
    fn learn(&self, event: &RecordedEvent) -> recount::Result<()> {
        let mut hooks = lock(&self.hooks);
        match event.event_type.as_str() {
            "webhook.registered" => {
                let r: Registered = event.payload_as()?;
                hooks.entry(r.webhook_id).or_insert(Hook {
                    story_id: r.story,
                    url: r.url,
                    event_types: r.event_types,
                    secret: r.secret,
                    from: event.cursor,
                    until: None,
                });
            }
            "webhook.removed" => {
                let r: Removed = event.payload_as()?;
                if let Some(hook) = hooks.get_mut(&r.webhook_id) {
                    hook.until = Some(hook.until.map_or(event.cursor, |u| u.min(event.cursor)));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The webhooks `event` goes to: id, URL, secret.
    fn targets(&self, event: &RecordedEvent, story_id: &str) -> Vec<(String, String, String)> {
        lock(&self.hooks)
            .iter()
            .filter(|(_, h)| {
                h.story_id == story_id
                    && h.from < event.cursor
                    && h.until.is_none_or(|u| event.cursor < u)
                    && h.event_types.contains(&event.event_type)
            })
            .map(|(id, h)| (id.clone(), h.url.clone(), h.secret.clone()))
            .collect()
    }

    async fn deliver(
        &self,
        event: &RecordedEvent,
        envelope: &Envelope,
        url: &str,
        secret: &str,
    ) -> Result<(), String> {
        crate::domain::host_allowed(url, self.allowed_hosts.as_deref())
            .map_err(|host| format!("host `{host}` is not one webhooks are delivered to"))?;
        let body = serde_json::to_vec(envelope).map_err(|e| e.to_string())?;
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-storychain-event-id", event.id.to_string())
            .header("x-storychain-event-type", &event.event_type)
            .header("x-storychain-webhook-id", &envelope.webhook_id)
            .header(
                "x-storychain-signature",
                signature(secret.as_bytes(), &body),
            )
            .body(body)
            .send()
            .await
            // Without the URL: it may carry credentials.
            .map_err(|e| format!("not delivered: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

#[async_trait]
impl SideEffect for WebhookDelivery {
    fn name(&self) -> &str {
        WEBHOOKS
    }

    fn filter(&self) -> LogFilter {
        story_events().category("webhook")
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
        if event.stream.category() == "webhook" {
            return Ok(self.learn(event)?);
        }
        let Some(story_id) = story_of(event).map(|s| s.into_owned()) else {
            return Ok(());
        };
        let targets = self.targets(event, &story_id);
        if targets.is_empty() {
            return Ok(());
        }
        let mut envelope = Envelope {
            id: event.id,
            webhook_id: String::new(),
            story_id,
            event_type: event.event_type.clone(),
            stream: event.stream.to_string(),
            version: event.version,
            cursor: event.cursor.to_string(),
            recorded_at: event.recorded_at,
            payload: event.payload_as()?,
        };
        let mut failures = Vec::new();
        for (webhook_id, url, secret) in targets {
            let key = (event.id, webhook_id.clone());
            if lock(&self.done).contains(&key) {
                continue;
            }
            envelope.webhook_id = webhook_id.clone();
            match self.deliver(event, &envelope, &url, &secret).await {
                Ok(()) => {
                    lock(&self.done).insert(key);
                }
                Err(e) => failures.push(format!("webhook {webhook_id}: {e}")),
            }
        }
        if failures.is_empty() {
            lock(&self.done).retain(|(id, _)| *id != event.id);
            Ok(())
        } else {
            Err(failures.join("; ").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_the_body_and_is_checked() {
        // RFC 4231, test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify(b"jefe", b"what do ya want for nothing?", &sig));
    }
}
