//! Messages the API itself starts: a test message through a channel (at most 10 per clinic per
//! hour), and the handling of an inbound SMS keyword — STOP opts the number out at once, START
//! back in, HELP gets the help text — with the reply queued as a service message.

use super::{id, is_e164};
use crate::{
    convert,
    domain::{facts::Facts, keywords, templates::catalog::TemplateId},
    store::{
        self,
        notifications::{self as notes, NewNotification},
        preferences, read_models, webhooks,
    },
};
use clinicnet_proto::{
    common::v1::Locale,
    notifications::v1::{
        self as pb, Channel, InboundSmsKeyword, NotificationCategory, NotificationKind,
        send_test_message_request::Target,
    },
};
use platform::{
    ApiError,
    auth::{Caller, Role},
    error::Violations,
    idempotency::{self, Start},
};
use sqlx::PgPool;
use time::OffsetDateTime;
use tonic::Status;

/// Test messages allowed per clinic per hour.
const TESTS_PER_HOUR: i64 = 10;

fn new_message(
    source_key: String,
    kind: NotificationKind,
    channel: Channel,
    template: Option<TemplateId>,
    locale: Locale,
) -> NewNotification {
    NewNotification {
        source_key,
        source_event_id: String::new(),
        recipient_kind: "address",
        recipient_id: String::new(),
        channel: channel as i16,
        kind: kind as i16,
        category: NotificationCategory::Service as i16,
        template: template.map(|t| t.name().to_owned()).unwrap_or_default(),
        critical: false,
        reminder_lead_seconds: 0,
        webhook_endpoint_id: None,
        clinic_id: String::new(),
        appointment_id: String::new(),
        address: String::new(),
        facts: Facts {
            event_type: "test_message".into(),
            ..Facts::default()
        },
        locale: locale as i16,
        scheduled_at: OffsetDateTime::now_utc(),
    }
}

/// SendTestMessage.
pub async fn send_test(
    pool: &PgPool,
    caller: &Caller,
    request: pb::SendTestMessageRequest,
) -> Result<pb::SendTestMessageResponse, Status> {
    let mut v = Violations::new();
    let channel = Channel::try_from(request.channel).unwrap_or_default();
    v.check(
        channel == Channel::Unspecified,
        "channel",
        "a channel is required",
    );
    let locale = match Locale::try_from(request.locale) {
        Ok(Locale::EsUs) => Locale::EsUs,
        Ok(_) => Locale::EnUs,
        Err(_) => {
            v.add("locale", "unknown locale");
            Locale::EnUs
        }
    };
    match &request.target {
        None => v.add(
            "target",
            "a webhook_endpoint_id, clinic_id or address is required",
        ),
        Some(Target::WebhookEndpointId(_)) => v.check(
            channel != Channel::Webhook,
            "channel",
            "a webhook endpoint takes CHANNEL_WEBHOOK",
        ),
        Some(Target::ClinicId(c)) => {
            v.check(c.is_empty(), "clinic_id", "required");
            v.check(
                channel == Channel::Webhook,
                "channel",
                "a clinic contact takes email or SMS",
            );
        }
        Some(Target::Address(a)) => match channel {
            Channel::Email => v.check(
                !a.contains('@') || a.len() > 320,
                "address",
                "an email address is required",
            ),
            Channel::Sms => v.check(!is_e164(a), "address", "an E.164 number is required"),
            _ => v.add("channel", "an address takes email or SMS"),
        },
    }
    v.finish()?;
    if matches!(request.target, Some(Target::Address(_))) {
        caller.require_role(&[Role::Ops])?;
    }
    let mut tx = match idempotency::start(
        pool,
        caller,
        "SendTestMessage",
        &request.request_id,
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let source = format!("test:{}:{}", caller.key(), request.request_id);
    let template = (channel != Channel::Webhook).then_some(TemplateId::TestMessage);
    let mut message = new_message(
        source,
        NotificationKind::TestMessage,
        channel,
        template,
        locale,
    );
    match &request.target {
        Some(Target::WebhookEndpointId(endpoint)) => {
            let endpoint_id = id("webhook_endpoint_id", endpoint)?;
            let endpoint = webhooks::get(tx.conn(), endpoint_id)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| ApiError::NotFound(format!("webhook endpoint {endpoint_id}")))?;
            caller.require_clinic(&endpoint.clinic_id)?;
            if endpoint.removed_at.is_some() {
                return Err(
                    ApiError::precondition("endpoint_removed", "the endpoint was removed").into(),
                );
            }
            message.recipient_kind = "clinic";
            message.recipient_id = endpoint.clinic_id.clone();
            message.clinic_id = endpoint.clinic_id;
            message.webhook_endpoint_id = Some(endpoint_id);
        }
        Some(Target::ClinicId(clinic_id)) => {
            caller.require_clinic(clinic_id)?;
            let clinic = read_models::clinic(tx.conn(), clinic_id)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {clinic_id}")))?;
            let contact = if channel == Channel::Email {
                &clinic.front_desk_email
            } else {
                &clinic.front_desk_phone
            };
            if contact.is_empty() {
                return Err(ApiError::precondition(
                    "no_contact_on_channel",
                    "the clinic has no front-desk contact on this channel",
                )
                .into());
            }
            message.recipient_kind = "clinic";
            message.recipient_id = clinic_id.clone();
            message.clinic_id = clinic_id.clone();
        }
        Some(Target::Address(address)) => message.address = address.clone(),
        None => {}
    }
    if !message.clinic_id.is_empty() {
        let since = OffsetDateTime::now_utc() - time::Duration::hours(1);
        if notes::tests_since(tx.conn(), &message.clinic_id, since)
            .await
            .map_err(ApiError::from)?
            >= TESTS_PER_HOUR
        {
            return Err(Status::resource_exhausted(
                "at most 10 test messages per clinic per hour",
            ));
        }
    }
    let row = notes::create(tx.conn(), &message)
        .await
        .map_err(ApiError::from)?;
    let response = pb::SendTestMessageResponse {
        notification: Some(convert::notification(&row)),
    };
    tx.commit(&response).await?;
    Ok(response)
}

/// ReceiveInboundSms.
pub async fn inbound_sms(
    pool: &PgPool,
    caller: &Caller,
    request: pb::ReceiveInboundSmsRequest,
) -> Result<pb::ReceiveInboundSmsResponse, ApiError> {
    let mut v = Violations::new();
    v.check(
        !is_e164(&request.from_phone),
        "from_phone",
        "an E.164 number is required",
    );
    v.check(
        !is_e164(&request.to_phone),
        "to_phone",
        "an E.164 number is required",
    );
    v.check(
        request.body.chars().count() > 1600,
        "body",
        "at most 1,600 characters",
    );
    v.finish()?;
    let mut tx = match idempotency::start(
        pool,
        caller,
        "ReceiveInboundSms",
        &request.request_id,
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Fresh(tx) => tx,
    };
    let (keyword, spoken) = keywords::classify(&request.body);
    let template = match keyword {
        InboundSmsKeyword::Stop => {
            preferences::set_sms_opt_out(tx.conn(), &request.from_phone, true).await?;
            Some(TemplateId::SmsKeywordStop)
        }
        InboundSmsKeyword::Start => {
            preferences::set_sms_opt_out(tx.conn(), &request.from_phone, false).await?;
            Some(TemplateId::SmsKeywordStart)
        }
        InboundSmsKeyword::Help => Some(TemplateId::SmsKeywordHelp),
        InboundSmsKeyword::Unspecified => None,
    };
    let reply = match template {
        Some(template) => {
            let known = read_models::locale_of_phone(tx.conn(), &request.from_phone).await?;
            let locale = match (spoken, known) {
                (Some(Locale::EsUs), _) => Locale::EsUs,
                (_, Some(l)) if l == Locale::EsUs as i16 => Locale::EsUs,
                _ => Locale::EnUs,
            };
            let mut message = new_message(
                format!("inbound:{}", request.request_id),
                NotificationKind::SmsKeywordReply,
                Channel::Sms,
                Some(template),
                locale,
            );
            message.address = request.from_phone.clone();
            message.facts.event_type = "sms_keyword_reply".into();
            message.scheduled_at = store::to_db(jiff::Timestamp::now());
            Some(convert::notification(
                &notes::create(tx.conn(), &message).await?,
            ))
        }
        None => None,
    };
    let sms_opted_out = preferences::sms_opted_out(tx.conn(), &request.from_phone).await?;
    tracing::info!(keyword = keyword.as_str_name(), "inbound SMS handled");
    let response = pb::ReceiveInboundSmsResponse {
        keyword: keyword as i32,
        sms_opted_out,
        reply,
    };
    tx.commit(&response).await?;
    Ok(response)
}
