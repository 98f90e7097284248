//! What the appointments scenarios share: the real `appointments` binary on its own database and
//! NATS, a clinic announced to it the way the directory does (a `ClinicRegistered` event on the
//! `DIRECTORY` stream) with one psychotherapy chair and provider per column of work, and slots.

use crate::scenarios::Service;
use clinicnet_proto::{
    appointments::v1::{
        AvailabilitySlot, StreamSyncAvailabilityRequest, SyncAvailabilityChunk,
        SyncAvailabilityHeader, SyncOutcome,
        appointments_service_client::AppointmentsServiceClient,
        stream_sync_availability_request::Part,
    },
    common::v1::{GeoPoint, Modality, TimeInterval, TimeOfDay},
    directory::v1 as dir,
    events::v1::{ClinicRegistered, EventMetadata},
};
use platform::auth::{BearerToken, Role};
use prost::Message as _;
use std::time::{Duration, Instant};
use system_tests::{PrivateNats, fixtures};
use time::OffsetDateTime;
use tonic::{codegen::InterceptedService, transport::Channel};
use uuid::Uuid;

/// The modality with the fewest clinical gates: no intake, no REMS, no dose.
pub const PSYCHOTHERAPY: i32 = Modality::Psychotherapy as i32;
/// Slots per chair per day: 60-minute sessions from 14:00 to 22:00 UTC, inside the clinic's
/// 08:00–20:00 New York hours all year.
pub const SLOTS_PER_DAY: usize = 8;
const FIRST_HOUR_UTC: u8 = 14;

/// A clinic the appointments service knows, with `chairs` chairs and as many providers
/// (provider n works chair n).
pub struct Clinic {
    /// Its id.
    pub id: String,
}

impl Clinic {
    /// Chair n.
    pub fn chair(&self, n: usize) -> String {
        format!("{}-chair-{n}", self.id)
    }

    /// Provider n.
    pub fn provider(&self, n: usize) -> String {
        format!("{}-provider-{n}", self.id)
    }
}

/// Starts the appointments service and announces a clinic with `chairs` chairs to it.
pub async fn start(chairs: usize) -> anyhow::Result<(Service, Clinic)> {
    let nats = PrivateNats::start().await?;
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    platform::events::streams::ensure_stream(&jetstream, "directory", 1).await?;
    let service = Service::start_on("appointments", nats).await?;
    let clinic = Clinic {
        id: format!("bench-clinic-{}", Uuid::new_v4().simple()),
    };
    let event = ClinicRegistered {
        metadata: Some(EventMetadata {
            event_id: Uuid::now_v7().to_string(),
            occurred_at: Some(timestamp(OffsetDateTime::now_utc())),
            aggregate_type: "clinic".into(),
            aggregate_id: clinic.id.clone(),
            aggregate_version: 1,
            producer: "directory".into(),
            request_id: Uuid::new_v4().to_string(),
            causation_event_id: String::new(),
        }),
        clinic: Some(profile(&clinic, chairs)),
        providers: (0..chairs)
            .map(|n| dir::Provider {
                provider_id: clinic.provider(n),
                npi: "1679576722".into(),
                languages: vec!["en".into(), "es".into()],
                clinic_ids: vec![clinic.id.clone()],
                modalities: vec![PSYCHOTHERAPY],
                status: dir::ProviderStatus::Active as i32,
                version: 1,
                ..Default::default()
            })
            .collect(),
    };
    let mut headers = async_nats::HeaderMap::new();
    let event_id = event.metadata.as_ref().map(|m| m.event_id.clone());
    headers.insert("Nats-Msg-Id", event_id.unwrap_or_default().as_str());
    jetstream
        .publish_with_headers(
            "clinicnet.directory.clinic.registered",
            headers,
            event.encode_to_vec().into(),
        )
        .await?
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let known: Option<i64> =
            sqlx::query_scalar("SELECT version FROM clinics WHERE clinic_id = $1")
                .bind(&clinic.id)
                .fetch_optional(service.database.pool())
                .await?;
        if known.is_some() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the clinic never reached the appointments read model"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((service, clinic))
}

fn profile(clinic: &Clinic, chairs: usize) -> dir::Clinic {
    let hour = |hours| TimeOfDay { hours, minutes: 0 };
    dir::Clinic {
        clinic_id: clinic.id.clone(),
        display_name: "Bench clinic".into(),
        status: dir::ClinicStatus::Active as i32,
        npi: "1245319599".into(),
        time_zone: "America/New_York".into(),
        languages: vec!["en".into(), "es".into()],
        weekly_hours: Some(dir::WeeklyHours {
            days: (1..=7)
                .map(|day_of_week| dir::DayHours {
                    day_of_week,
                    intervals: vec![dir::LocalTimeRange {
                        start: Some(hour(8)),
                        end: Some(hour(20)),
                    }],
                })
                .collect(),
        }),
        locations: vec![dir::Location {
            location_id: "main".into(),
            display_name: "Coral Gables".into(),
            coordinates: Some(GeoPoint {
                latitude: 25.7215,
                longitude: -80.2684,
            }),
            ..Default::default()
        }],
        chairs: (0..chairs)
            .map(|n| dir::Chair {
                chair_id: clinic.chair(n),
                location_id: "main".into(),
                display_name: format!("Room {n}"),
                modalities: vec![PSYCHOTHERAPY],
                capacity: 1,
                retired: false,
            })
            .collect(),
        modalities: vec![PSYCHOTHERAPY],
        rems_certification: Some(fixtures::rems(fixtures::days_from_today(365))),
        scheduling_policy: Some(dir::SchedulingPolicy {
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            minimum_notice_minutes: 0,
            booking_horizon_days: 365,
            iv_infusion_minutes: 40,
            iv_recovery_minutes: 45,
            esketamine_monitoring_minutes: 120,
            therapy_session_minutes: 60,
            late_cancellation_hours: 24,
        }),
        version: 1,
        ..Default::default()
    }
}

/// Midnight UTC two days from now: the first day slots are offered on.
pub fn first_day() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT) + time::Duration::days(2)
}

/// The start of a chair's k-th slot.
pub fn slot_start(k: usize) -> OffsetDateTime {
    first_day()
        + time::Duration::days((k / SLOTS_PER_DAY) as i64)
        + time::Duration::hours(i64::from(FIRST_HOUR_UTC) + (k % SLOTS_PER_DAY) as i64)
}

/// The k-th psychotherapy slot of chair n (with provider n).
pub fn slot(clinic: &Clinic, n: usize, k: usize) -> AvailabilitySlot {
    let start = slot_start(k);
    AvailabilitySlot {
        external_id: String::new(),
        chair_id: clinic.chair(n),
        provider_id: clinic.provider(n),
        modality: PSYCHOTHERAPY,
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(start + time::Duration::hours(1))),
    }
}

/// The window holding `slots_per_chair` slots of every chair.
pub fn window(slots_per_chair: usize) -> TimeInterval {
    TimeInterval {
        start_time: Some(timestamp(first_day())),
        end_time: Some(timestamp(
            first_day() + time::Duration::days(slots_per_chair.div_ceil(SLOTS_PER_DAY) as i64),
        )),
    }
}

/// A protobuf timestamp.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// A client of the appointments service acting as ops.
pub type Apps = AppointmentsServiceClient<InterceptedService<Channel, BearerToken>>;

/// An ops client of `service`.
pub async fn apps(service: &Service) -> anyhow::Result<Apps> {
    Ok(AppointmentsServiceClient::with_interceptor(
        service.channel().await?,
        service.token(Role::Ops),
    )
    .max_decoding_message_size(64 << 20)
    .max_encoding_message_size(64 << 20))
}

/// Replaces the clinic's availability in `window` with `slots` in one streamed sync (chunks of
/// 5,000 slots).
pub async fn stream_sync(
    apps: &mut Apps,
    clinic: &Clinic,
    window: TimeInterval,
    slots: Vec<AvailabilitySlot>,
    sync_version: u64,
) -> anyhow::Result<SyncOutcome> {
    let request_id = Uuid::new_v4().to_string();
    let mut messages = vec![StreamSyncAvailabilityRequest {
        request_id: request_id.clone(),
        part: Some(Part::Header(SyncAvailabilityHeader {
            clinic_id: clinic.id.clone(),
            window: Some(window),
            sync_version,
            expected_slot_count: i64::try_from(slots.len())?,
        })),
    }];
    messages.extend(
        slots
            .chunks(5_000)
            .map(|chunk| StreamSyncAvailabilityRequest {
                request_id: request_id.clone(),
                part: Some(Part::Chunk(SyncAvailabilityChunk {
                    slots: chunk.to_vec(),
                })),
            }),
    );
    apps.stream_sync_availability(futures::stream::iter(messages))
        .await?
        .into_inner()
        .outcome
        .ok_or_else(|| anyhow::anyhow!("a sync without an outcome"))
}
