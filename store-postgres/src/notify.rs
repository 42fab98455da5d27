//! Wake-ups for followers of the global log: `NOTIFY` after appends commit, coalesced, and
//! one `LISTEN` connection per store that wakes every waiting task.
//!
//! A notification is only a hint. Readers read again after every wake-up and after every
//! timeout; a lost notification (a dropped listener connection) costs latency, never events.

use crate::queries::NOTIFY;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long the listener waits before reconnecting after an error.
const LISTEN_RETRY: Duration = Duration::from_millis(500);

/// The sending side: appends signal a background task, which sends the `NOTIFY`, at most one
/// per `interval` (`PgOptions::notify_interval`). Sending it inside the append transaction
/// would make all committing writers queue on the notification lock; sending one per append
/// would cost a transaction each.
#[derive(Debug)]
pub(crate) struct Notifier {
    interval: Duration,
    pending: OnceLock<mpsc::Sender<()>>,
}

impl Notifier {
    pub(crate) fn new(interval: Duration) -> Self {
        Notifier {
            interval,
            pending: OnceLock::new(),
        }
    }

    /// Records that an append committed. Never waits: if a wake-up is already pending, this
    /// one rides along with it.
    pub(crate) fn appended(&self, pool: &PgPool, channel: &str) {
        let tx = self.pending.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1);
            let (pool, channel) = (pool.clone(), channel.to_owned());
            tokio::spawn(send_notifications(rx, pool, channel, self.interval));
            tx
        });
        let _ = tx.try_send(());
    }
}

/// Sends one `NOTIFY` per burst of appends; ends when the store is dropped.
async fn send_notifications(
    mut pending: mpsc::Receiver<()>,
    pool: PgPool,
    channel: String,
    interval: Duration,
) {
    while pending.recv().await.is_some() {
        if let Err(e) = sqlx::query(NOTIFY).bind(&channel).execute(&pool).await {
            tracing::debug!(error = %e, "recount: NOTIFY after append failed; followers poll");
        }
        tokio::time::sleep(interval).await;
    }
}

/// The receiving side: one `LISTEN` connection per store, started by the first waiter, which
/// bumps a counter every waiter watches.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    wakeups: Mutex<Option<watch::Receiver<u64>>>,
}

impl Listener {
    /// A receiver that changes on every notification (and on every reconnect, since
    /// notifications may have been lost meanwhile).
    pub(crate) fn subscribe(&self, pool: &PgPool, channel: &str) -> watch::Receiver<u64> {
        let mut slot = self.wakeups.lock().unwrap_or_else(|p| p.into_inner());
        // A listener task that ended (its runtime shut down) has no sender left: start anew.
        if let Some(rx) = slot.as_ref().filter(|rx| rx.has_changed().is_ok()) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(0);
        tokio::spawn(listen(tx, pool.clone(), channel.to_owned()));
        *slot = Some(rx.clone());
        rx
    }
}

/// Listens on `channel` until every receiver is gone.
async fn listen(wake: watch::Sender<u64>, pool: PgPool, channel: String) {
    let bump = |wake: &watch::Sender<u64>| wake.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "recount: LISTEN connection failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(LISTEN_RETRY) => continue,
                    _ = wake.closed() => return,
                }
            }
        };
        listener.ignore_pool_close_event(true);
        if let Err(e) = listener.listen(&channel).await {
            tracing::debug!(error = %e, "recount: LISTEN failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(LISTEN_RETRY) => continue,
                _ = wake.closed() => return,
            }
        }
        // Anything may have happened while not listening.
        bump(&wake);
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => bump(&wake),
                    // The connection was lost and re-established: notifications may be lost.
                    Ok(None) => bump(&wake),
                    Err(e) => {
                        tracing::debug!(error = %e, "recount: LISTEN connection error; reconnecting");
                        bump(&wake);
                        break;
                    }
                },
                _ = wake.closed() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LISTEN_RETRY) => {}
            _ = wake.closed() => return,
        }
    }
}
