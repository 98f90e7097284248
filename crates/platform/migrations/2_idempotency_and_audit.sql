-- Idempotency keys of mutating calls, and the append-only audit record of patient data access.

CREATE TABLE idempotency_keys (
    caller      text        NOT NULL,
    request_id  text        NOT NULL,
    method      text        NOT NULL,
    fingerprint bytea       NOT NULL,
    response    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, request_id)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    subject    text        NOT NULL,
    role       text        NOT NULL,
    action     text        NOT NULL,
    patient_id text        NOT NULL,
    trace_id   text        NOT NULL
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER;
