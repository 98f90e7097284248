-- Notifications: read models fed by events (clinics, patients' contacts, visits), preferences,
-- SMS opt-outs, webhook endpoints with their secrets, and the notifications themselves (which
-- are also the durable schedule of reminders and retries).

CREATE TABLE clinics (
    clinic_id        text        PRIMARY KEY,
    version          bigint      NOT NULL,
    display_name     text        NOT NULL,
    location_name    text        NOT NULL DEFAULT '',
    time_zone        text        NOT NULL,
    front_desk_phone text        NOT NULL DEFAULT '',
    front_desk_email text        NOT NULL DEFAULT '',
    on_call_phone    text        NOT NULL DEFAULT '',
    on_call_email    text        NOT NULL DEFAULT '',
    -- IV preparation texts by locale directory name ("en_US", "es_US").
    iv_instructions  jsonb       NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Contacts and consent of patients (PHI).
CREATE TABLE patients (
    patient_id           text        PRIMARY KEY,
    version              bigint      NOT NULL,
    registered_clinic_id text        NOT NULL,
    locale               smallint    NOT NULL,
    email                text        NOT NULL DEFAULT '',
    email_consent        boolean     NOT NULL,
    phone                text        NOT NULL DEFAULT '',
    sms_consent          boolean     NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_phone ON patients (phone) WHERE phone <> '';

-- Visits as their latest event says; reminders check them just before sending.
CREATE TABLE appointments (
    appointment_id text        PRIMARY KEY,
    version        bigint      NOT NULL,
    clinic_id      text        NOT NULL,
    patient_id     text        NOT NULL,
    start_time     timestamptz NOT NULL,
    cancelled      boolean     NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Numbers that texted a STOP keyword (lifted only by START).
CREATE TABLE sms_opt_outs (
    phone      text        PRIMARY KEY,
    opted_out  boolean     NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE preferences (
    recipient_kind text        NOT NULL CHECK (recipient_kind IN ('patient', 'clinic')),
    recipient_id   text        NOT NULL,
    -- clinicnet.notifications.v1.Preferences (channels only), protobuf-encoded.
    preferences    bytea       NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_kind, recipient_id)
);

CREATE TABLE webhook_endpoints (
    endpoint_id uuid        PRIMARY KEY,
    clinic_id   text        NOT NULL,
    url         text        NOT NULL CHECK (url LIKE 'https://%' AND length(url) <= 2000),
    kinds       smallint[]  NOT NULL DEFAULT '{}',
    description text        NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz
);
CREATE UNIQUE INDEX webhook_endpoints_live_url ON webhook_endpoints (clinic_id, url) WHERE removed_at IS NULL;
CREATE INDEX webhook_endpoints_clinic ON webhook_endpoints (clinic_id, created_at);

-- Signing secrets: the current one (expires_at NULL) and previous ones signing until expires_at.
CREATE TABLE webhook_secrets (
    endpoint_id uuid        NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
    secret      bytea       NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz,
    PRIMARY KEY (endpoint_id, issued_at)
);
CREATE UNIQUE INDEX webhook_secrets_one_current ON webhook_secrets (endpoint_id) WHERE expires_at IS NULL;

CREATE TABLE notifications (
    notification_id       uuid        PRIMARY KEY,
    -- What caused it: the event id, or the idempotency key of a test message or keyword reply.
    source_key            text        NOT NULL,
    source_event_id       text        NOT NULL DEFAULT '',
    recipient_kind        text        NOT NULL CHECK (recipient_kind IN ('patient', 'clinic', 'address')),
    recipient_id          text        NOT NULL,
    channel               smallint    NOT NULL CHECK (channel IN (1, 2, 3)),
    kind                  smallint    NOT NULL CHECK (kind > 0),
    category              smallint    NOT NULL CHECK (category > 0),
    template              text        NOT NULL DEFAULT '',
    critical              boolean     NOT NULL,
    reminder_lead_seconds bigint      NOT NULL DEFAULT 0,
    webhook_endpoint_id   uuid        REFERENCES webhook_endpoints,
    clinic_id             text        NOT NULL DEFAULT '',
    appointment_id        text        NOT NULL DEFAULT '',
    -- Explicit address of test messages and keyword replies (PHI).
    address               text        NOT NULL DEFAULT '',
    -- Event facts to render with (PHI).
    facts                 jsonb       NOT NULL DEFAULT '{}',
    locale                smallint    NOT NULL DEFAULT 0,
    status                text        NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
    suppression_reason    smallint    NOT NULL DEFAULT 0,
    attempts              integer     NOT NULL DEFAULT 0,
    last_error            text        NOT NULL DEFAULT '',
    permanent_failure     boolean     NOT NULL DEFAULT false,
    provider_message_id   text        NOT NULL DEFAULT '',
    version               bigint      NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    scheduled_at          timestamptz NOT NULL,
    next_attempt_at       timestamptz,
    -- When the scheduler next looks at it: scheduled time, next retry, or end of a send's lease.
    due_at                timestamptz NOT NULL,
    sending_since         timestamptz,
    sent_at               timestamptz,
    delivered_at          timestamptz,
    final_at              timestamptz,
    CHECK ((status = 'suppressed') = (suppression_reason <> 0)),
    CHECK (status <> 'sending' OR sending_since IS NOT NULL)
);
-- Never created twice: one notification per (source, recipient, channel, kind), per reminder lead
-- and per webhook endpoint.
CREATE UNIQUE INDEX notifications_identity ON notifications (
    source_key, recipient_kind, recipient_id, channel, kind, reminder_lead_seconds,
    COALESCE(webhook_endpoint_id, '00000000-0000-0000-0000-000000000000'::uuid)
);
CREATE INDEX notifications_due ON notifications (due_at) WHERE status IN ('queued', 'sending');
CREATE INDEX notifications_recipient ON notifications (recipient_kind, recipient_id, notification_id DESC);
CREATE INDEX notifications_appointment ON notifications (appointment_id, notification_id DESC) WHERE appointment_id <> '';
CREATE INDEX notifications_sms_sent ON notifications (recipient_kind, recipient_id, sent_at) WHERE channel = 2 AND sent_at IS NOT NULL;
CREATE INDEX notifications_tests ON notifications (clinic_id, created_at) WHERE kind = 12;
