//! The whole network for the end-to-end scenarios: the four real services on one NATS server
//! (`system_tests::network`), notifications at its shipped delivery settings sending to the
//! bench's SMTP sink; partner clinics created through the directory with psychotherapy chairs
//! and providers, their slots, and patients registered with an intake and insured.

use crate::scenarios::{
    appointments::{self, Apps, PSYCHOTHERAPY, SLOTS_PER_DAY},
    bench_patient,
    insurance::{self, Insurance, Integrator},
    smtp_sink::SmtpSink,
};
use clinicnet_proto::{
    appointments::v1::{
        AvailabilitySlot, Intake, Patient, PatientContacts, Phq9, RecordIntakeRequest,
        RegisterPatientRequest, appointments_service_client::AppointmentsServiceClient,
        patients_service_client::PatientsServiceClient,
    },
    directory::v1::{
        Chair, CreateClinicRequest, CreateProviderRequest, DayHours, WeeklyHours,
        directory_service_client::DirectoryServiceClient,
    },
};
use futures::{StreamExt as _, TryStreamExt as _};
use platform::auth::{BearerToken, Role};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use system_tests::{
    fixtures,
    network::{Network, NetworkOptions, SERVICES},
};
use tonic::{codegen::InterceptedService, transport::Channel};
use uuid::Uuid;

type Patients = PatientsServiceClient<InterceptedService<Channel, BearerToken>>;
type Directory = DirectoryServiceClient<InterceptedService<Channel, BearerToken>>;

/// Calls in flight while setting the network up.
const SETUP_CONCURRENCY: usize = 16;

/// A partner clinic: its id and, per chair, the chair and the provider working it.
pub struct NetClinic {
    /// Its id.
    pub id: String,
    /// (chair id, provider id) per chair.
    pub chairs: Vec<(String, String)>,
}

/// The running network and ops clients of it.
pub struct Net {
    /// The services, their databases and NATS.
    pub network: Network,
    /// Where notifications sends email.
    pub sink: SmtpSink,
    /// Appointments, as ops.
    pub apps: Apps,
    /// Insurance, as ops.
    pub insurance: Insurance,
    /// The payer's integrator.
    pub integrator: Integrator,
    patients: Patients,
    directory: Directory,
}

impl Net {
    /// Starts the network and sets the payer and its plan up.
    pub async fn start() -> anyhow::Result<Net> {
        let sink = SmtpSink::start().await?;
        let env = [
            ("*", "RUST_LOG", "warn".to_owned()),
            ("notifications", "SMTP_URL", sink.url()),
            ("notifications", "SMTP_STARTTLS", "off".to_owned()),
            // The shipped default (the test network polls faster).
            ("notifications", "DELIVERY_TICK_MS", "1000".to_owned()),
        ];
        let network = Network::start(NetworkOptions {
            env: env
                .into_iter()
                .map(|(s, k, v)| (s.to_owned(), k.to_owned(), v))
                .collect(),
            ..Default::default()
        })
        .await?;
        let token = |role, payer: Option<&str>| {
            BearerToken::new(&network.token(role, &[], payer)).expect("a header value")
        };
        let ops = || token(Role::Ops, None);
        let apps = AppointmentsServiceClient::with_interceptor(
            network.channel("appointments").await,
            ops(),
        );
        let mut insurance = insurance::ops(network.channel("insurance").await, ops());
        insurance::payer_and_plan(&mut insurance).await?;
        Ok(Net {
            apps,
            insurance,
            integrator: insurance::integrator(
                network.channel("insurance").await,
                token(Role::Integrator, Some(insurance::PAYER)),
            ),
            patients: PatientsServiceClient::with_interceptor(
                network.channel("appointments").await,
                ops(),
            ),
            directory: DirectoryServiceClient::with_interceptor(
                network.channel("directory").await,
                ops(),
            ),
            network,
            sink,
        })
    }

    /// A database of the service `name`.
    pub fn pool(&self, name: &str) -> &PgPool {
        self.network.database(name).pool()
    }

    /// The process id of each service.
    pub fn pids(&mut self) -> Vec<(&'static str, u32)> {
        SERVICES
            .into_iter()
            .map(|name| (name, self.network.service(name).pid()))
            .collect()
    }

    /// Creates a clinic with `chairs` psychotherapy chairs (open 08:00–20:00 New York every
    /// day, no notice needed) and a provider per chair, and waits until appointments knows them.
    pub async fn clinic(&self, name: &str, chairs: usize) -> anyhow::Result<NetClinic> {
        let profile = fixtures::clinic_with(name, |c| {
            let every_day = fixtures::range((8, 0), (20, 0));
            c.weekly_hours = Some(WeeklyHours {
                days: (1..=7)
                    .map(|day_of_week| DayHours {
                        day_of_week,
                        intervals: vec![every_day],
                    })
                    .collect(),
            });
            c.chairs = (0..chairs)
                .map(|n| Chair {
                    location_id: "main".into(),
                    display_name: format!("Room {n}"),
                    modalities: vec![PSYCHOTHERAPY],
                    capacity: 1,
                    ..Default::default()
                })
                .collect();
            c.modalities.push(PSYCHOTHERAPY);
            if let Some(policy) = c.scheduling_policy.as_mut() {
                policy.minimum_notice_minutes = 0;
                policy.buffer_before_minutes = 0;
                policy.buffer_after_minutes = 0;
                policy.booking_horizon_days = 365;
            }
        });
        let clinic = self
            .directory
            .clone()
            .create_clinic(CreateClinicRequest {
                request_id: Uuid::now_v7().to_string(),
                clinic: Some(profile),
            })
            .await?
            .into_inner()
            .clinic
            .ok_or_else(|| anyhow::anyhow!("a clinic without its record"))?;
        let mut providers = Vec::with_capacity(chairs);
        for _ in 0..chairs {
            let mut provider = fixtures::provider(&[&clinic.clinic_id]);
            provider.modalities = vec![PSYCHOTHERAPY];
            let created = self
                .directory
                .clone()
                .create_provider(CreateProviderRequest {
                    request_id: Uuid::now_v7().to_string(),
                    provider: Some(provider),
                })
                .await?
                .into_inner()
                .provider
                .ok_or_else(|| anyhow::anyhow!("a provider without its record"))?;
            providers.push(created.provider_id);
        }
        let known = self.pool("appointments").clone();
        let id = clinic.clinic_id.clone();
        wait_for("the clinic and its providers in appointments", async || {
            let (providers,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM providers WHERE $1 = ANY(clinic_ids)")
                    .bind(&id)
                    .fetch_one(&known)
                    .await?;
            let (chairs,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM chairs WHERE clinic_id = $1")
                    .bind(&id)
                    .fetch_one(&known)
                    .await?;
            Ok(usize::try_from(providers)? == clinic.chairs.len()
                && usize::try_from(chairs)? == clinic.chairs.len())
        })
        .await?;
        Ok(NetClinic {
            id: clinic.clinic_id.clone(),
            chairs: clinic
                .chairs
                .iter()
                .map(|c| c.chair_id.clone())
                .zip(providers)
                .collect(),
        })
    }

    /// Opens `days` days of one-hour psychotherapy slots on every chair of `clinic`.
    pub async fn open_slots(&self, clinic: &NetClinic, days: usize) -> anyhow::Result<()> {
        let per_chair = days * SLOTS_PER_DAY;
        let slots = clinic
            .chairs
            .iter()
            .flat_map(|(chair, provider)| {
                (0..per_chair).map(move |k| {
                    let start = appointments::slot_start(k);
                    AvailabilitySlot {
                        external_id: String::new(),
                        chair_id: chair.clone(),
                        provider_id: provider.clone(),
                        modality: PSYCHOTHERAPY,
                        start_time: Some(appointments::timestamp(start)),
                        end_time: Some(appointments::timestamp(start + time::Duration::hours(1))),
                    }
                })
            })
            .collect();
        let target = appointments::Clinic {
            id: clinic.id.clone(),
        };
        appointments::stream_sync(
            &mut self.apps.clone(),
            &target,
            appointments::window(per_chair),
            slots,
            1,
        )
        .await?;
        Ok(())
    }

    /// Free slots of the clinics, earliest first, then by clinic and chair (so each day of
    /// slots lists the same chairs in the same order).
    pub async fn free_slots(&self, clinic_ids: &[String]) -> anyhow::Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT slot_id FROM slots WHERE status = 'free' AND clinic_id = ANY($1)
              ORDER BY lower(during), clinic_id, chair_id",
        )
        .bind(clinic_ids)
        .fetch_all(self.pool("appointments"))
        .await?)
    }

    /// Registers `count` patients of `clinic_id` (email with consent, an intake with a
    /// diagnosis), insures them, and returns their ids once insurance knows them.
    pub async fn patients(&self, clinic_id: &str, count: usize) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = futures::stream::iter(0..count)
            .map(|_| {
                let mut patients = self.patients.clone();
                async move {
                    let email = format!("p{}@bench.example", Uuid::new_v4().simple());
                    let patient = patients
                        .register_patient(RegisterPatientRequest {
                            request_id: Uuid::now_v7().to_string(),
                            patient: Some(Patient {
                                contacts: Some(PatientContacts {
                                    email,
                                    email_consent: true,
                                    ..Default::default()
                                }),
                                ..bench_patient(clinic_id)
                            }),
                        })
                        .await?
                        .into_inner()
                        .patient
                        .ok_or_else(|| anyhow::anyhow!("a registration without a patient"))?;
                    patients
                        .record_intake(RecordIntakeRequest {
                            request_id: Uuid::now_v7().to_string(),
                            intake: Some(Intake {
                                patient_id: patient.patient_id.clone(),
                                clinic_id: clinic_id.to_owned(),
                                diagnosis_codes: vec!["F33.2".into()],
                                baseline_phq9: Some(Phq9 {
                                    total_score: 20,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                        })
                        .await?;
                    anyhow::Ok(patient.patient_id)
                }
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
        insurance::cover(&self.insurance, &ids).await?;
        Ok(ids)
    }
}

/// Polls `done` every 50 ms until it holds, failing after two minutes.
pub async fn wait_for(
    what: &str,
    mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await? {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
