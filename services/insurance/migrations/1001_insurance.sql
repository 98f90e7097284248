-- The insurance service's schema. Payers, plans and fee schedules are data managed by ops
-- through the API: nothing is seeded here.
--
-- Each aggregate row keeps, next to the columns that constraints, queries and reports need, its
-- complete record as the contract's protobuf encoding (`body`), so the API, the events and the
-- storage cannot drift apart. The columns are written from the same value as the body, in the
-- same statement.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE payers (
    payer_id   text        PRIMARY KEY CHECK (payer_id ~ '^[a-z0-9-]{2,64}$'),
    version    bigint      NOT NULL CHECK (version >= 1),
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    plan_id    text        PRIMARY KEY CHECK (plan_id ~ '^[a-z0-9-]{2,64}$'),
    payer_id   text        NOT NULL REFERENCES payers,
    version    bigint      NOT NULL CHECK (version >= 1),
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plans_payer ON plans (payer_id, plan_id);

-- One charge per plan, code and service date: overlapping ranges are refused by the database.
CREATE TABLE fee_schedule_entries (
    plan_id           text      NOT NULL REFERENCES plans ON DELETE CASCADE,
    procedure_code    text      NOT NULL,
    unit_charge_cents bigint    NOT NULL CHECK (unit_charge_cents >= 0),
    effective         daterange NOT NULL CHECK (NOT isempty(effective)),
    EXCLUDE USING gist (plan_id WITH =, procedure_code WITH =, effective WITH &&)
);

-- Read models fed by the appointments events (patients for member details and scope, intakes
-- for the clinical facts of prior authorization requests).
CREATE TABLE patients (
    patient_id          text   PRIMARY KEY,
    registered_clinic_id text  NOT NULL,
    version             bigint NOT NULL,
    body                bytea  NOT NULL
);

CREATE TABLE intakes (
    patient_id text   PRIMARY KEY,
    version    bigint NOT NULL,
    body       bytea  NOT NULL
);

-- Coverage status: 1 active, 2 removed (CoverageStatus). Two active coverages of a patient may
-- not share a priority over overlapping dates.
CREATE TABLE coverages (
    coverage_id uuid        PRIMARY KEY,
    patient_id  text        NOT NULL,
    payer_id    text        NOT NULL REFERENCES payers,
    plan_id     text        NOT NULL REFERENCES plans,
    priority    smallint    NOT NULL CHECK (priority BETWEEN 1 AND 3),
    status      smallint    NOT NULL CHECK (status IN (1, 2)),
    effective   daterange   NOT NULL CHECK (NOT isempty(effective)),
    version     bigint      NOT NULL CHECK (version >= 1),
    body        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    EXCLUDE USING gist (patient_id WITH =, priority WITH =, effective WITH &&) WHERE (status = 1)
);
CREATE INDEX coverages_patient ON coverages (patient_id, priority);

-- Eligibility checks: status 1 pending, 2 answered (EligibilityStatus; UNKNOWN is a pending
-- check past its deadline, derived when read). A check served from the cache repeats the trace
-- number of the answer it copies, so only requests sent to the payer hold a unique one.
CREATE TABLE eligibility_checks (
    check_id        uuid        PRIMARY KEY,
    trace_number    text        NOT NULL,
    coverage_id     uuid        NOT NULL REFERENCES coverages,
    payer_id        text        NOT NULL REFERENCES payers,
    service_date    date        NOT NULL,
    procedure_codes text[]      NOT NULL,
    status          smallint    NOT NULL CHECK (status IN (1, 2)),
    from_cache      boolean     NOT NULL,
    requested_at    timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    answered_at     timestamptz,
    body            bytea       NOT NULL
);
CREATE UNIQUE INDEX eligibility_trace_number ON eligibility_checks (trace_number) WHERE NOT from_cache;
CREATE INDEX eligibility_cache ON eligibility_checks (coverage_id, service_date, answered_at DESC)
    WHERE status = 2 AND NOT from_cache;

-- Prior authorizations: status as PriorAuthorizationStatus (1 requested, 2 pended, 3 approved,
-- 4 denied; EXPIRED is an approval past valid_until, derived when read).
CREATE TABLE prior_authorizations (
    prior_authorization_id uuid        PRIMARY KEY,
    patient_id             text        NOT NULL,
    coverage_id            uuid        NOT NULL REFERENCES coverages,
    payer_id               text        NOT NULL REFERENCES payers,
    clinic_id              text        NOT NULL,
    status                 smallint    NOT NULL CHECK (status BETWEEN 1 AND 4),
    procedure_codes        text[]      NOT NULL,
    authorization_number   text,
    valid                  daterange,
    requested_at           timestamptz NOT NULL,
    version                bigint      NOT NULL CHECK (version >= 1),
    body                   bytea       NOT NULL,
    CHECK ((status = 3) = (authorization_number IS NOT NULL AND valid IS NOT NULL))
);
CREATE INDEX prior_authorizations_patient ON prior_authorizations (patient_id, payer_id, status);
CREATE INDEX prior_authorizations_listing ON prior_authorizations (requested_at DESC, prior_authorization_id DESC);

-- Claims: status and frequency as ClaimStatus and ClaimFrequency. One original claim per visit.
CREATE TABLE claims (
    claim_id            uuid        PRIMARY KEY,
    status              smallint    NOT NULL CHECK (status BETWEEN 1 AND 10),
    frequency           smallint    NOT NULL CHECK (frequency IN (1, 2)),
    clinic_id           text        NOT NULL,
    payer_id            text        NOT NULL REFERENCES payers,
    patient_id          text        NOT NULL,
    appointment_id      text        NOT NULL,
    service_date        date        NOT NULL,
    total_charge_cents  bigint      NOT NULL CHECK (total_charge_cents >= 0),
    paid_cents          bigint      NOT NULL DEFAULT 0,
    adjusted_cents      bigint      NOT NULL DEFAULT 0,
    submitted_at        timestamptz,
    created_at          timestamptz NOT NULL,
    version             bigint      NOT NULL CHECK (version >= 1),
    body                bytea       NOT NULL,
    CHECK (status = 1 OR status = 9 OR status = 10 OR submitted_at IS NOT NULL)
);
CREATE UNIQUE INDEX claims_one_original_per_visit ON claims (appointment_id) WHERE frequency = 1;
CREATE INDEX claims_listing ON claims (created_at DESC, claim_id DESC);
CREATE INDEX claims_open ON claims (clinic_id, payer_id) WHERE status IN (2, 3, 6, 8);

-- Every posted claim payment (835 CLP): the remittance it came in, its outcome and amounts.
-- Feeds duplicate detection, the denial report and days to payment.
CREATE TABLE remittances (
    payer_id      text        NOT NULL REFERENCES payers,
    remittance_id text        NOT NULL,
    payment_date  date        NOT NULL,
    total_paid_cents bigint   NOT NULL,
    posted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payer_id, remittance_id)
);

CREATE TABLE adjudications (
    payer_id            text        NOT NULL,
    remittance_id       text        NOT NULL,
    claim_id            uuid        NOT NULL REFERENCES claims,
    clinic_id           text        NOT NULL,
    outcome             smallint    NOT NULL CHECK (outcome IN (5, 6, 7)),
    denial_reason_codes text[]      NOT NULL,
    paid_cents          bigint      NOT NULL,
    payment_date        date        NOT NULL,
    submitted_at        timestamptz NOT NULL,
    adjudicated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payer_id, remittance_id, claim_id),
    FOREIGN KEY (payer_id, remittance_id) REFERENCES remittances
);
CREATE INDEX adjudications_time ON adjudications (adjudicated_at);

CREATE TABLE superbills (
    superbill_id   uuid        PRIMARY KEY,
    appointment_id text        NOT NULL UNIQUE,
    patient_id     text        NOT NULL,
    clinic_id      text        NOT NULL,
    body           bytea       NOT NULL
);

-- The integrators' work: per payer, a gap-free sequence handed out under the payer's counter
-- row lock, so items commit in sequence order and a reader resuming after N never skips one.
CREATE TABLE work_counters (
    payer_id text   PRIMARY KEY REFERENCES payers,
    last_seq bigint NOT NULL
);

CREATE TABLE work_items (
    payer_id    text        NOT NULL REFERENCES payers,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    patient_id  text        NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    body        bytea       NOT NULL,
    PRIMARY KEY (payer_id, seq)
);
