-- Recount's SQLite schema, version 2: a state kept beside a checkpoint.
--
-- Consumers that keep a small state with their position (process managers, relays) save both
-- in one compare-and-set (`EventStore::save_checkpoint_state`), so the state always belongs to
-- the position stored with it. NULL: a checkpoint saved without a state.
ALTER TABLE checkpoints ADD COLUMN state TEXT;
