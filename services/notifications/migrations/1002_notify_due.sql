-- A notification created due now wakes the delivery schedulers of every replica when its
-- transaction commits (they LISTEN on `notifications_due`; the channel name is
-- `store::notifications::NOTIFY_CHANNEL`). The database's clock decides "due now", the same clock
-- the schedulers' claim uses. PostgreSQL folds identical notifications of one transaction into one.

CREATE FUNCTION notify_notification_due() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifications_due', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER notifications_due
    AFTER INSERT ON notifications
    FOR EACH ROW
    WHEN (NEW.scheduled_at <= now())
    EXECUTE FUNCTION notify_notification_due();
