-- The directory: clinics with their locations, dated overrides and chairs, and providers.
--
-- A clinic's profile (hours, contacts, addresses, policy, instructions…) is stored as the API's
-- own `clinicnet.directory.v1.Clinic` message: the aggregate is always read and written whole,
-- and the contract's evolution rules (buf breaking checks) already govern that encoding. Every
-- value a constraint, an index or a search needs is kept in a column beside it, written from the
-- same validated profile in the same transaction. Providers are stored the same way.

CREATE TABLE clinics (
    id                uuid        PRIMARY KEY,
    version           bigint      NOT NULL CHECK (version >= 1),
    status            text        NOT NULL CHECK (status IN ('active', 'suspended')),
    suspension_reason text        NOT NULL DEFAULT '',
    npi               text        NOT NULL CONSTRAINT clinics_npi_unique UNIQUE,
    time_zone         text        NOT NULL,
    languages         text[]      NOT NULL,
    modalities        integer[]   NOT NULL,
    payer_ids         text[]      NOT NULL,
    -- ISO weekdays (1 = Monday) with weekly hours.
    open_weekdays     smallint[]  NOT NULL,
    -- First instant the REMS certification is no longer current (the start of the day after its
    -- expiry date in the clinic's time zone); NULL when the clinic has none.
    rems_valid_until  timestamptz,
    profile           bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clinics_active_modalities ON clinics USING gin (modalities) WHERE status = 'active';
CREATE INDEX clinics_active_languages ON clinics USING gin (languages) WHERE status = 'active';
CREATE INDEX clinics_active_payers ON clinics USING gin (payer_ids) WHERE status = 'active';

-- Where each location is, for distance search: the bounding-box prefilter ranges over this index.
CREATE TABLE clinic_locations (
    clinic_id   uuid             NOT NULL REFERENCES clinics (id),
    location_id text             NOT NULL,
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    PRIMARY KEY (clinic_id, location_id)
);
CREATE INDEX clinic_locations_position
    ON clinic_locations (latitude, longitude) INCLUDE (clinic_id, location_id);

-- Dated exceptions to the weekly hours: whether the clinic is open on that local date.
CREATE TABLE clinic_date_overrides (
    clinic_id uuid    NOT NULL REFERENCES clinics (id),
    day       date    NOT NULL,
    open      boolean NOT NULL,
    PRIMARY KEY (clinic_id, day)
);

-- Chairs and rooms: part of the clinic aggregate (changing one bumps the clinic's version), with
-- network-wide ids. Retired chairs stay for history.
CREATE TABLE chairs (
    id           text      PRIMARY KEY,
    clinic_id    uuid      NOT NULL REFERENCES clinics (id),
    ordinal      bigint    GENERATED ALWAYS AS IDENTITY,
    location_id  text      NOT NULL,
    display_name text      NOT NULL,
    modalities   integer[] NOT NULL,
    capacity     integer   NOT NULL CHECK (capacity BETWEEN 1 AND 50),
    retired      boolean   NOT NULL DEFAULT false
);
CREATE INDEX chairs_by_clinic ON chairs (clinic_id, ordinal);

CREATE TABLE providers (
    id         uuid        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version >= 1),
    status     text        NOT NULL CHECK (status IN ('active', 'inactive')),
    npi        text        NOT NULL CONSTRAINT providers_npi_unique UNIQUE,
    profile    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Which clinics each provider serves; the foreign key keeps every one of them real.
CREATE TABLE provider_clinics (
    provider_id uuid NOT NULL REFERENCES providers (id),
    clinic_id   uuid NOT NULL REFERENCES clinics (id),
    PRIMARY KEY (provider_id, clinic_id)
);
CREATE INDEX provider_clinics_by_clinic ON provider_clinics (clinic_id, provider_id);
