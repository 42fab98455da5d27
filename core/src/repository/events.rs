//! What the repository does with single events: checks a replayed stream has no gap, spots
//! the events of a command already written, derives command event ids, encodes decisions.

use crate::{CommandContext, Error, Event, Executed, NewEvent, RecordedEvent};
use uuid::Uuid;

/// Store contract, item 1: the event after version `before` is version `before + 1`. A row
/// removed from the middle of a stream (by hand, by a broken tool) would otherwise go
/// unnoticed and the state be silently wrong.
pub(super) fn check_next(recorded: &RecordedEvent, before: u64) -> Result<(), Error> {
    let Some(next) = before.checked_add(1) else {
        return Err(recorded.corrupt(format!(
            "version {} follows version {before}, the largest there is",
            recorded.version
        )));
    };
    if recorded.version == next {
        return Ok(());
    }
    Err(recorded.corrupt(format!(
        "version {next} is missing from the stream: version {} follows version {before}",
        recorded.version
    )))
}

/// Where the events of a command already written sit in a replayed stream.
pub(super) struct Watch {
    command: Option<Uuid>,
    pub(super) done: Option<Executed<()>>,
}

impl Watch {
    pub(super) fn new(command: Option<Uuid>) -> Self {
        Watch {
            command,
            done: None,
        }
    }

    /// Notes `recorded` when it is the command's next event.
    pub(super) fn see(&mut self, recorded: &RecordedEvent) {
        let Some(cmd) = self.command else { return };
        let next = self.done.as_ref().map_or(0, |d| d.event_ids.len());
        if recorded.id == command_event_id(cmd, next) {
            let d = self.done.get_or_insert_with(|| Executed {
                state: (),
                version: 0,
                cursor: None,
                event_ids: Vec::new(),
            });
            d.event_ids.push(recorded.id);
            (d.version, d.cursor) = (recorded.version, Some(recorded.cursor));
        }
    }
}

/// The id of the `index`th event of command `command` (UUID v5): the same command, sent again,
/// writes the same ids, which the store recognises (store contract, item 4).
pub fn command_event_id(command: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&command, &(index as u64).to_be_bytes())
}

pub(super) fn encode<E: Event>(
    events: &[E],
    ctx: &CommandContext,
    correlation_id: Uuid,
) -> Result<Vec<NewEvent>, Error> {
    let metadata = ctx.metadata(correlation_id);
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let payload = e
                .encode()
                .map_err(|err| Error::invalid("payload", err.to_string()))?;
            let id = match ctx.command_id {
                Some(cmd) => command_event_id(cmd, i),
                None => Uuid::now_v7(),
            };
            Ok(NewEvent {
                id,
                event_type: e.event_type().to_owned(),
                schema_version: e.schema_version(),
                payload,
                metadata: metadata.clone(),
            })
        })
        .collect()
}
