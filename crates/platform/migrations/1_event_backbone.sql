-- Transactional outbox, consumer inbox and dead letters shared by every service.

CREATE TABLE outbox (
    id                bigserial PRIMARY KEY,
    event_id          uuid        NOT NULL UNIQUE,
    subject           text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    payload           bytea       NOT NULL,
    trace_carrier     jsonb       NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    attempts          integer     NOT NULL DEFAULT 0,
    last_error        text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    subject      text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);

CREATE TABLE dead_letters (
    consumer        text        NOT NULL,
    event_id        uuid        NOT NULL,
    subject         text        NOT NULL,
    stream_sequence bigint      NOT NULL,
    payload         bytea       NOT NULL,
    trace_carrier   jsonb       NOT NULL DEFAULT '[]',
    attempts        integer     NOT NULL,
    last_error      text        NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    redriven_at     timestamptz,
    PRIMARY KEY (consumer, event_id)
);

-- A consumer whose checkpoint row is missing starts from the beginning of its stream (replay).
CREATE TABLE consumer_checkpoints (
    consumer   text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
