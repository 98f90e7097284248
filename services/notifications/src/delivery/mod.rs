//! The delivery scheduler: woken when a due notification is created (LISTEN/NOTIFY, on every
//! replica) and at least every tick (for postponed and retried notifications, and for
//! notifications missed while the listener reconnects), it claims due notifications
//! (`FOR UPDATE SKIP LOCKED`, so replicas share the queue), decides for each from the latest
//! facts — suppress, postpone (quiet hours), fail, or send — and sends the ones that go out, a few
//! at a time.
//!
//! # What "never twice" guarantees
//!
//! A notification exists once per (source event, recipient, channel, kind): a unique index, so a
//! redelivered event creates nothing new. Before a provider is called, the row is committed as
//! `sending` with the attempt counted and a lease; the provider gets the notification id as its
//! idempotency key (SMS `Idempotency-Key`, webhook `webhook-id`, email Message-ID). The outcome
//! is recorded afterwards only if the row is still in that attempt. If the process dies between
//! the provider's acceptance and that record, the row stays `sending`; when its lease ends
//! another worker (or the restarted process) sends it again **with the same id**:
//! - SMS and webhooks are then delivered exactly once, provided the provider honours the
//!   idempotency key and the endpoint de-duplicates on `webhook-id` (both are their contracts);
//! - email is delivered at least once: SMTP has no idempotency, so at most the messages in
//!   flight at the crash (≤ DELIVERY_CONCURRENCY) can arrive twice, each copy with the same
//!   Message-ID, which mail stores use to drop the duplicate.
//!
//! Nothing is ever lost: a notification leaves the queue only as sent, failed (with its reason)
//! or suppressed (with its reason).

pub mod email;
pub mod sms;
pub mod webhook;

use crate::{
    config::NotificationsConfig,
    domain::{
        compose::{self, ClinicInfo},
        kind,
        policy::{self, Limits, Situation, Verdict, Visit},
        preferences,
        retry::{Failure, RetryPolicy},
        templates::{TemplateSet, catalog::TemplateId},
    },
    publish,
    store::{
        self,
        notifications::{self as notes, NotificationRow},
        preferences as prefs, read_models, webhooks,
    },
};
use clinicnet_proto::{
    common::v1::Locale,
    notifications::v1::{Channel, NotificationCategory, NotificationKind, SuppressionReason},
};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use platform::{shutdown::Shutdown, wake::Wakeup};
use sqlx::{PgConnection, PgPool};
use std::{sync::Arc, time::Duration};
use uuid::Uuid;

/// How long a notification waits for its clinic to appear in the directory read model.
const CLINIC_WAIT_LIMIT: SignedDuration = SignedDuration::from_hours(1);
/// How often it looks again meanwhile.
const CLINIC_WAIT_STEP: SignedDuration = SignedDuration::from_secs(5);

/// A message ready for a provider.
#[derive(Debug, Clone)]
enum Message {
    Email {
        to: String,
        subject: String,
        body: String,
    },
    Sms {
        to: String,
        body: String,
    },
    Webhook {
        url: String,
        secrets: Vec<Vec<u8>>,
        body: String,
    },
}

/// What happens to a claimed notification.
enum Prepared {
    Send(Locale, Message),
    Suppress(SuppressionReason),
    Postpone {
        until: Timestamp,
        reschedule: bool,
        note: &'static str,
    },
    Fail(String),
}

/// The scheduler and the providers it sends through.
#[derive(Clone)]
pub struct Scheduler {
    pool: PgPool,
    templates: Arc<TemplateSet>,
    limits: Limits,
    retry: RetryPolicy,
    tick: Duration,
    batch: i64,
    concurrency: usize,
    lease: SignedDuration,
    email: email::EmailSender,
    sms: sms::SmsSender,
    webhook: webhook::WebhookSender,
}

impl Scheduler {
    /// A scheduler with providers built from `config`.
    pub fn new(
        pool: PgPool,
        templates: Arc<TemplateSet>,
        config: &NotificationsConfig,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            pool,
            templates,
            limits: config.limits(),
            retry: config.retry(),
            tick: Duration::from_millis(config.delivery_tick_ms.max(10)),
            batch: config.delivery_batch_size.max(1),
            concurrency: config.delivery_concurrency.max(1),
            lease: SignedDuration::try_from(config.send_lease())?,
            email: email::EmailSender::new(config)?,
            sms: sms::SmsSender::new(config)?,
            webhook: webhook::WebhookSender::new(config)?,
        })
    }

    /// Runs rounds until shutdown; a full round is followed at once by the next, any other by a
    /// wait for a new due notification or the tick.
    pub async fn run(self, shutdown: Shutdown) {
        let mut wakeup = Wakeup::listen(&self.pool, notes::NOTIFY_CHANNEL).await;
        while !shutdown.is_triggered() {
            let claimed = match self.round().await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "delivery round failed; retrying"
                    );
                    0
                }
            };
            if claimed < usize::try_from(self.batch).unwrap_or(usize::MAX) {
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = wakeup.wait(self.tick) => {}
                }
            }
        }
        tracing::info!("delivery scheduler stopped");
    }

    /// Claims one batch, decides each, sends what goes out; returns how many were claimed.
    async fn round(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows = notes::lock_due(&mut tx, self.batch).await?;
        let claimed = rows.len();
        let now = Timestamp::now();
        let mut sends = Vec::new();
        for row in rows {
            let id = row.notification_id;
            match self.prepare(&mut tx, &row, now).await? {
                Prepared::Send(locale, message) => {
                    let lease_until = store::to_db(now.checked_add(self.lease)?);
                    let attempt =
                        notes::begin_send(&mut tx, id, locale as i16, lease_until).await?;
                    sends.push((id, attempt, message));
                }
                Prepared::Suppress(reason) => {
                    if let Some(row) = notes::suppress(&mut tx, id, reason as i16).await? {
                        tracing::info!(notification_id = %id, reason = reason.as_str_name(), "notification suppressed");
                        publish::state_changed(&mut tx, &row).await?;
                    }
                }
                Prepared::Postpone {
                    until,
                    reschedule,
                    note,
                } => {
                    notes::postpone(&mut tx, id, store::to_db(until), reschedule, note).await?;
                }
                Prepared::Fail(reason) => {
                    if let Some(row) =
                        notes::record_failed(&mut tx, id, None, &reason, true).await?
                    {
                        tracing::warn!(notification_id = %id, reason, "notification cannot be composed");
                        publish::state_changed(&mut tx, &row).await?;
                    }
                }
            }
        }
        tx.commit().await?;
        futures::stream::iter(sends)
            .for_each_concurrent(self.concurrency, |(id, attempt, message)| async move {
                if let Err(error) = self.deliver(id, attempt, message).await {
                    tracing::warn!(notification_id = %id, error = format!("{error:#}"), "delivery outcome not recorded; the send will be retried with the same id");
                }
            })
            .await;
        Ok(claimed)
    }

    async fn prepare(
        &self,
        tx: &mut PgConnection,
        row: &NotificationRow,
        now: Timestamp,
    ) -> anyhow::Result<Prepared> {
        let channel = Channel::try_from(i32::from(row.channel)).unwrap_or_default();
        let kind = NotificationKind::try_from(i32::from(row.kind)).unwrap_or_default();
        let category = NotificationCategory::try_from(i32::from(row.category)).unwrap_or_default();
        let facts = &row.facts.0;
        let clinic = match row.clinic_id.as_str() {
            "" => None,
            id => match read_models::clinic(tx, id).await? {
                Some(clinic) => Some(clinic),
                None if now.duration_since(store::from_db(row.created_at)) > CLINIC_WAIT_LIMIT => {
                    return Ok(Prepared::Fail("clinic unknown to the directory".into()));
                }
                None => {
                    return Ok(Prepared::Postpone {
                        until: now.checked_add(CLINIC_WAIT_STEP)?,
                        reschedule: false,
                        note: "waiting for the clinic's directory data",
                    });
                }
            },
        };
        let info = clinic
            .as_ref()
            .map(|c| ClinicInfo {
                name: c.display_name.clone(),
                location_name: c.location_name.clone(),
                phone: c.front_desk_phone.clone(),
                time_zone: c.time_zone.clone(),
                iv_instructions: c.iv_instructions.0.clone(),
            })
            .unwrap_or_else(|| ClinicInfo {
                name: "clinicnet".into(),
                ..ClinicInfo::default()
            });

        // Address, consent and language of the recipient on this channel.
        let mut endpoint_url = None;
        let (address, consent, locale) = match row.recipient_kind.as_str() {
            "patient" => match read_models::patient(tx, &row.recipient_id).await? {
                Some(p) => {
                    let locale = Locale::try_from(i32::from(p.locale)).unwrap_or_default();
                    match channel {
                        Channel::Email => (p.email, p.email_consent, locale),
                        Channel::Sms => (p.phone, p.sms_consent, locale),
                        _ => (String::new(), false, locale),
                    }
                }
                None => (String::new(), false, Locale::EnUs),
            },
            "clinic" => {
                let c = clinic.clone();
                let pick = |urgent: String, desk: String| {
                    if row.critical && !urgent.is_empty() {
                        urgent
                    } else {
                        desk
                    }
                };
                let address = match (channel, c) {
                    (Channel::Email, Some(c)) => pick(c.on_call_email, c.front_desk_email),
                    (Channel::Sms, Some(c)) => pick(c.on_call_phone, c.front_desk_phone),
                    (Channel::Webhook, _) => match row.webhook_endpoint_id {
                        Some(id) => match webhooks::get(tx, id).await? {
                            Some(e) if e.removed_at.is_none() => {
                                endpoint_url = Some(e.url.clone());
                                e.url
                            }
                            _ => String::new(),
                        },
                        None => String::new(),
                    },
                    _ => String::new(),
                };
                (address, true, Locale::EnUs)
            }
            _ => (
                row.address.clone(),
                true,
                Locale::try_from(i32::from(row.locale)).unwrap_or_default(),
            ),
        };
        let locale = if locale == Locale::EsUs {
            Locale::EsUs
        } else {
            Locale::EnUs
        };
        let sms_opted_out = channel == Channel::Sms && prefs::sms_opted_out(tx, &address).await?;
        let preferences_allow = match row.recipient_kind.as_str() {
            "address" => true,
            recipient_kind => prefs::get(tx, recipient_kind, &row.recipient_id)
                .await?
                .is_none_or(|stored| preferences::allows(&stored.preferences, channel, category)),
        };
        let (sent_last_day, sent_last_week) = if channel == Channel::Sms
            && !row.critical
            && category != NotificationCategory::Service
        {
            let day = store::to_db(now.checked_sub(SignedDuration::from_hours(24))?);
            let week = store::to_db(now.checked_sub(SignedDuration::from_hours(24 * 7))?);
            (
                notes::sms_sent_since(tx, &row.recipient_kind, &row.recipient_id, day).await?,
                notes::sms_sent_since(tx, &row.recipient_kind, &row.recipient_id, week).await?,
            )
        } else {
            (0, 0)
        };
        let reminder = if kind == NotificationKind::AppointmentReminder {
            let scheduled_for = facts
                .start
                .and_then(|s| Timestamp::from_second(s).ok())
                .unwrap_or(now);
            let visit = read_models::appointment_for_share(tx, &row.appointment_id)
                .await?
                .map(|a| Visit {
                    cancelled: a.cancelled,
                    start: store::from_db(a.start_time),
                });
            Some((scheduled_for, visit))
        } else {
            None
        };
        let zone = match compose::zone(&info, facts) {
            Ok(zone) => zone,
            Err(error) => return Ok(Prepared::Fail(error.to_string())),
        };
        let situation = Situation {
            now,
            channel,
            category,
            critical: row.critical || kind::is_critical(kind),
            reminder,
            has_address: !address.is_empty(),
            consent,
            sms_opted_out,
            preferences_allow,
            zone: zone.clone(),
            sent_last_day: u32::try_from(sent_last_day).unwrap_or(u32::MAX),
            sent_last_week: u32::try_from(sent_last_week).unwrap_or(u32::MAX),
        };
        match policy::decide(&situation, &self.limits) {
            Verdict::Suppress(reason) => return Ok(Prepared::Suppress(reason)),
            Verdict::Defer(until) => {
                return Ok(Prepared::Postpone {
                    until,
                    reschedule: true,
                    note: "",
                });
            }
            Verdict::Send => {}
        }
        if channel == Channel::Webhook {
            let Some(endpoint) = row.webhook_endpoint_id else {
                return Ok(Prepared::Suppress(SuppressionReason::NoContact));
            };
            let secrets = webhooks::signing_secrets(tx, endpoint).await?;
            let (Some(url), false) = (endpoint_url, secrets.is_empty()) else {
                return Ok(Prepared::Suppress(SuppressionReason::NoContact));
            };
            let body = compose::webhook_body(
                &row.notification_id.to_string(),
                &kind::webhook_name(kind),
                &row.clinic_id,
                facts,
                now,
            );
            return Ok(Prepared::Send(
                locale,
                Message::Webhook { url, secrets, body },
            ));
        }
        let Some(template) = TemplateId::parse(&row.template) else {
            return Ok(Prepared::Fail(format!(
                "unknown template {:?}",
                row.template
            )));
        };
        let rendered = compose::values(template, facts, &info, locale)
            .map_err(|e| e.to_string())
            .and_then(|values| {
                self.templates
                    .render(template, channel, locale, &values, &zone)
                    .map_err(|e| e.to_string())
            });
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(reason) => return Ok(Prepared::Fail(reason)),
        };
        let message = match channel {
            Channel::Email => Message::Email {
                to: address,
                subject: rendered.subject.unwrap_or_default(),
                body: rendered.body,
            },
            _ => Message::Sms {
                to: address,
                body: rendered.body.trim_end().to_owned(),
            },
        };
        Ok(Prepared::Send(locale, message))
    }

    /// Sends one message and records the outcome (with its event) for attempt `attempt`.
    async fn deliver(&self, id: Uuid, attempt: i32, message: Message) -> anyhow::Result<()> {
        let (channel, result) = match &message {
            Message::Email { to, subject, body } => {
                ("email", self.email.send(id, to, subject, body).await)
            }
            Message::Sms { to, body } => ("sms", self.sms.send(id, to, body).await),
            Message::Webhook { url, secrets, body } => {
                ("webhook", self.webhook.send(id, url, secrets, body).await)
            }
        };
        let mut tx = self.pool.begin().await?;
        match result {
            Ok(provider_id) => {
                if let Some(row) = notes::record_sent(&mut tx, id, attempt, &provider_id).await? {
                    publish::state_changed(&mut tx, &row).await?;
                    tracing::info!(notification_id = %id, channel, attempt, "notification sent");
                }
            }
            Err(Failure::Transient(reason)) => {
                let unit: f64 = rand::random();
                match self
                    .retry
                    .delay(u32::try_from(attempt).unwrap_or(u32::MAX), unit)
                {
                    Some(delay) => {
                        let at = store::to_db(
                            Timestamp::now().checked_add(SignedDuration::try_from(delay)?)?,
                        );
                        notes::record_retry(&mut tx, id, attempt, &reason, at).await?;
                        tracing::info!(notification_id = %id, channel, attempt, reason, "transient failure; retry planned");
                    }
                    None => {
                        let reason = format!("{reason} (after {attempt} attempts)");
                        if let Some(row) =
                            notes::record_failed(&mut tx, id, Some(attempt), &reason, false).await?
                        {
                            publish::state_changed(&mut tx, &row).await?;
                            tracing::warn!(notification_id = %id, channel, attempt, reason, "notification failed: retries exhausted");
                        }
                    }
                }
            }
            Err(Failure::Permanent(reason)) => {
                if let Some(row) =
                    notes::record_failed(&mut tx, id, Some(attempt), &reason, true).await?
                {
                    publish::state_changed(&mut tx, &row).await?;
                    tracing::warn!(notification_id = %id, channel, attempt, reason, "notification failed permanently");
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
