-- The outbox holds only pending events; the relay moves each published event to the sent log.
-- Marking an event sent used to rewrite its row and every index entry; now it deletes the
-- pending row (no index writes) and appends to a log indexed only by a BRIN range on
-- published_at, which retention prunes by.

CREATE TABLE outbox_sent (
    id                bigint      NOT NULL,
    event_id          uuid        NOT NULL,
    subject           text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    payload           bytea       NOT NULL,
    trace_carrier     jsonb       NOT NULL,
    created_at        timestamptz NOT NULL,
    published_at      timestamptz NOT NULL,
    attempts          integer     NOT NULL  -- failed publish attempts before this one
);
CREATE INDEX outbox_sent_published ON outbox_sent USING brin (published_at);

INSERT INTO outbox_sent
SELECT id, event_id, subject, aggregate_id, aggregate_version, payload, trace_carrier,
       created_at, published_at, attempts
  FROM outbox WHERE published_at IS NOT NULL ORDER BY published_at;
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_pending;
DROP INDEX outbox_published;
ALTER TABLE outbox DROP COLUMN published_at;
