-- The appointments service's schema: the directory read model, patients and intakes,
-- availability (slots and syncs), reservations (holds and visits) that PostgreSQL keeps from
-- overlapping, appointments, treatment courses and their configured plans.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- ---------------------------------------------------------------------------------------------
-- Directory read model, built only from directory events. Each row keeps the aggregate version
-- of the event it came from; an older event never overwrites a newer one.

CREATE TABLE clinics (
    clinic_id   text PRIMARY KEY,
    version     bigint NOT NULL,
    suspended   boolean NOT NULL,
    time_zone   text NOT NULL,
    -- The complete clinicnet.directory.v1.Clinic of the newest event (hours, overrides,
    -- locations, modalities, REMS certification, scheduling policy).
    profile     bytea NOT NULL
);

CREATE TABLE chairs (
    chair_id        text PRIMARY KEY,
    clinic_id       text NOT NULL REFERENCES clinics,
    modalities      smallint[] NOT NULL,
    retired         boolean NOT NULL,
    clinic_version  bigint NOT NULL
);
CREATE INDEX chairs_clinic ON chairs (clinic_id);

CREATE TABLE providers (
    provider_id text PRIMARY KEY,
    version     bigint NOT NULL,
    active      boolean NOT NULL,
    npi         text NOT NULL,
    languages   text[] NOT NULL,
    modalities  smallint[] NOT NULL,
    clinic_ids  text[] NOT NULL
);
CREATE INDEX providers_clinics ON providers USING gin (clinic_ids);

-- ---------------------------------------------------------------------------------------------
-- Patients: the minimum needed to schedule and reach them. Every access is audited.

CREATE TABLE patients (
    patient_id           uuid PRIMARY KEY,
    given_name           text NOT NULL,
    middle_name          text NOT NULL,
    family_name          text NOT NULL,
    birth_date           date NOT NULL,
    locale               smallint NOT NULL,
    email                text NOT NULL,
    email_consent        boolean NOT NULL,
    mobile_phone         text NOT NULL,
    sms_consent          boolean NOT NULL,
    consent_update_time  timestamptz,
    registered_clinic_id text NOT NULL,
    version              bigint NOT NULL,
    create_time          timestamptz NOT NULL DEFAULT now(),
    update_time          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_clinic ON patients (registered_clinic_id, patient_id);

-- Intakes are append-only; the latest one is in force.
CREATE TABLE intakes (
    intake_id     uuid PRIMARY KEY,
    patient_id    uuid NOT NULL REFERENCES patients,
    clinic_id     text NOT NULL,
    record_time   timestamptz NOT NULL,
    baseline_phq9 smallint NOT NULL CHECK (baseline_phq9 BETWEEN 0 AND 27),
    -- The complete clinicnet.appointments.v1.Intake (diagnoses, trials, attestation).
    intake        bytea NOT NULL
);
CREATE INDEX intakes_in_force ON intakes (patient_id, record_time DESC, intake_id DESC);

-- ---------------------------------------------------------------------------------------------
-- Availability.

CREATE TABLE availability_state (
    clinic_id         text PRIMARY KEY,
    last_sync_version bigint NOT NULL DEFAULT 0
);

CREATE TABLE availability_syncs (
    clinic_id    text NOT NULL,
    sync_version bigint NOT NULL,
    -- The clinicnet.appointments.v1.SyncOutcome returned, for replays.
    outcome      bytea NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (clinic_id, sync_version)
);

-- Busy and busy-tentative are not stored: they follow from the slot's active reservation.
CREATE TABLE slots (
    slot_id            uuid PRIMARY KEY,
    clinic_id          text NOT NULL,
    chair_id           text,
    provider_id        text,
    modality           smallint NOT NULL,
    during             tstzrange NOT NULL
        CHECK (NOT isempty(during) AND lower_inc(during) AND NOT upper_inc(during)
               AND NOT lower_inf(during) AND NOT upper_inf(during)),
    status             text NOT NULL CHECK (status IN ('free', 'busy-unavailable', 'entered-in-error')),
    sync_version       bigint NOT NULL,
    removed_in_version bigint,
    external_id        text NOT NULL DEFAULT '',
    CHECK (chair_id IS NOT NULL OR provider_id IS NOT NULL)
);
CREATE INDEX slots_clinic_start ON slots (clinic_id, lower(during), slot_id)
    WHERE status <> 'entered-in-error';
CREATE INDEX slots_free_by_modality ON slots (clinic_id, modality, lower(during))
    WHERE status = 'free';

-- ---------------------------------------------------------------------------------------------
-- Reservations: what occupies a chair and a provider, and when — active holds and active visits
-- alike, over the whole visit (dose, monitoring or recovery, buffers). PostgreSQL refuses any two
-- active reservations of one chair or one provider that overlap, whatever the concurrency and
-- however many replicas run. A hold past its expiry is still active here until the next booking
-- of its chair or provider (or the periodic sweep) expires it.

CREATE TABLE reservations (
    reservation_id uuid PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('hold', 'appointment')),
    slot_id        uuid NOT NULL REFERENCES slots,
    clinic_id      text NOT NULL,
    chair_id       text,
    provider_id    text,
    occupied       tstzrange NOT NULL CHECK (NOT isempty(occupied)),
    active         boolean NOT NULL,
    expires_at     timestamptz,
    CHECK ((kind = 'hold') = (expires_at IS NOT NULL)),
    CONSTRAINT chair_not_double_booked
        EXCLUDE USING gist (chair_id WITH =, occupied WITH &&) WHERE (active),
    CONSTRAINT provider_not_double_booked
        EXCLUDE USING gist (provider_id WITH =, occupied WITH &&) WHERE (active)
);
CREATE INDEX reservations_active_by_slot ON reservations (slot_id) WHERE active;
CREATE INDEX reservations_lapsing_holds ON reservations (expires_at) WHERE active AND kind = 'hold';

CREATE TABLE holds (
    hold_id     uuid PRIMARY KEY REFERENCES reservations,
    slot_id     uuid NOT NULL REFERENCES slots,
    patient_id  uuid REFERENCES patients,
    status      text NOT NULL CHECK (status IN ('active', 'consumed', 'released', 'expired')),
    expire_time timestamptz NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Treatment course plans: data, not code. Ops may add or change plans here; a course keeps a
-- copy of its plan as it was when the course was created.

CREATE TABLE course_plans (
    plan_code    text PRIMARY KEY,
    display_name text NOT NULL,
    modality     smallint NOT NULL,
    -- [{name, session_count, duration_days, max_sessions_per_week, min_days_between_sessions,
    --   planned_dose_mg, first_session_dose_mg}, …] in order.
    phases       jsonb NOT NULL CHECK (jsonb_typeof(phases) = 'array' AND jsonb_array_length(phases) > 0)
);

INSERT INTO course_plans (plan_code, display_name, modality, phases) VALUES
('esketamine-adult', 'Esketamine nasal spray, adults under 65', 2, '[
  {"name": "induction weeks 1-4", "session_count": 8, "duration_days": 28, "max_sessions_per_week": 2,
   "min_days_between_sessions": 2, "planned_dose_mg": 56, "first_session_dose_mg": 56},
  {"name": "optimization weeks 5-8", "session_count": 4, "duration_days": 28, "max_sessions_per_week": 1,
   "min_days_between_sessions": 4, "planned_dose_mg": 56, "first_session_dose_mg": 0},
  {"name": "maintenance from week 9", "session_count": 4, "duration_days": 56, "max_sessions_per_week": 1,
   "min_days_between_sessions": 7, "planned_dose_mg": 56, "first_session_dose_mg": 0}
]'),
('esketamine-65plus', 'Esketamine nasal spray, adults 65 and over', 2, '[
  {"name": "induction weeks 1-4", "session_count": 8, "duration_days": 28, "max_sessions_per_week": 2,
   "min_days_between_sessions": 2, "planned_dose_mg": 56, "first_session_dose_mg": 28},
  {"name": "optimization weeks 5-8", "session_count": 4, "duration_days": 28, "max_sessions_per_week": 1,
   "min_days_between_sessions": 4, "planned_dose_mg": 56, "first_session_dose_mg": 0},
  {"name": "maintenance from week 9", "session_count": 4, "duration_days": 56, "max_sessions_per_week": 1,
   "min_days_between_sessions": 7, "planned_dose_mg": 56, "first_session_dose_mg": 0}
]'),
('iv-induction-6', 'IV ketamine induction series, 6 infusions', 1, '[
  {"name": "induction", "session_count": 6, "duration_days": 21, "max_sessions_per_week": 3,
   "min_days_between_sessions": 2, "planned_dose_mg": 0, "first_session_dose_mg": 0}
]'),
('iv-maintenance-monthly', 'IV ketamine maintenance, monthly', 1, '[
  {"name": "maintenance", "session_count": 3, "duration_days": 90, "max_sessions_per_week": 1,
   "min_days_between_sessions": 21, "planned_dose_mg": 0, "first_session_dose_mg": 0}
]');

CREATE TABLE courses (
    course_id   uuid PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients,
    clinic_id   text NOT NULL,
    -- The clinicnet.appointments.v1.CoursePlan as configured at creation.
    plan        bytea NOT NULL,
    status      text NOT NULL CHECK (status IN ('proposed', 'booked', 'completed')),
    start_date  date NOT NULL,
    -- The clinicnet.appointments.v1.CoursePreferences.
    preferences bytea NOT NULL,
    version     bigint NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Appointments (FHIR status names). The reservation with the same id holds its chair and
-- provider while it is booked or checked in.

CREATE TABLE appointments (
    appointment_id      uuid PRIMARY KEY REFERENCES reservations,
    clinic_id           text NOT NULL,
    chair_id            text,
    provider_id         text NOT NULL,
    patient_id          uuid NOT NULL REFERENCES patients,
    modality            smallint NOT NULL,
    status              text NOT NULL
        CHECK (status IN ('booked', 'checked-in', 'fulfilled', 'cancelled', 'noshow')),
    start_time          timestamptz NOT NULL,
    end_time            timestamptz NOT NULL CHECK (end_time > start_time),
    clinic_time_zone    text NOT NULL,
    planned_dose_mg     integer NOT NULL,
    course_id           uuid REFERENCES courses,
    course_session_number integer NOT NULL DEFAULT 0,
    slot_id             uuid NOT NULL REFERENCES slots,
    integration_source_appointment_id uuid REFERENCES appointments,
    cancel_reason       smallint,
    cancel_note         text,
    cancel_late         boolean,
    cancel_time         timestamptz,
    check_in_time       timestamptz,
    -- The clinicnet.appointments.v1.Completion (PHI).
    completion          bytea,
    complete_time       timestamptz,
    phq9_total          smallint,
    integration_window  tstzrange,
    no_show_time        timestamptz,
    reschedule_count    integer NOT NULL DEFAULT 0,
    version             bigint NOT NULL,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    CHECK ((course_id IS NULL) = (course_session_number = 0))
);
CREATE INDEX appointments_clinic_start ON appointments (clinic_id, start_time, appointment_id);
CREATE INDEX appointments_patient_start ON appointments (patient_id, start_time);
CREATE INDEX appointments_course ON appointments (course_id) WHERE course_id IS NOT NULL;
CREATE INDEX appointments_fulfilled ON appointments (complete_time) WHERE status = 'fulfilled';

CREATE TABLE course_sessions (
    course_id       uuid NOT NULL REFERENCES courses,
    session_number  integer NOT NULL CHECK (session_number > 0),
    phase_index     integer NOT NULL,
    phase_name      text NOT NULL,
    earliest_date   date NOT NULL,
    latest_date     date NOT NULL CHECK (latest_date >= earliest_date),
    planned_dose_mg integer NOT NULL,
    appointment_id  uuid REFERENCES appointments,
    PRIMARY KEY (course_id, session_number)
);
