-- What the event probe's consumer applies: one row per applied event, in the order applied.
CREATE TABLE effects (
    seq               bigserial PRIMARY KEY,
    event_id          uuid   NOT NULL,
    aggregate_id      text   NOT NULL,
    aggregate_version bigint NOT NULL
);
-- Aggregates listed here are fixed: their events no longer fail.
CREATE TABLE poison_fixed (aggregate_id text PRIMARY KEY);
