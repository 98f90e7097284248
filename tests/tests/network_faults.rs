//! Faults across the whole network: 1,000 bookings, most of them checked in and fulfilled, sent
//! by a few concurrent clients (each call retried with its request id while the infrastructure
//! fails) while every service is SIGKILLed and restarted at random moments, NATS is stopped and
//! started again on its store, and PostgreSQL is restarted in immediate mode. Afterwards every
//! booking has exactly one confirmation, every fulfilled visit exactly one claim, no active visits
//! overlap, every outbox is drained, and the only dead letters are those of the malformed event
//! the test publishes on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clinicnet_proto::appointments::v1::{
    self as appt, appointments_service_client::AppointmentsServiceClient,
};
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use system_tests::PrivatePostgres;
use system_tests::network::{Network, NetworkOptions, SERVICES};
use system_tests::workload::{self, DeadLetter, PatientKind, request_id, retrying};
use tonic::transport::Channel;

const CLINICS: usize = 2;
const CHAIRS_PER_CLINIC: usize = 5;
const SLOTS_PER_CHAIR: usize = 100;
const BOOKINGS: usize = CLINICS * CHAIRS_PER_CLINIC * SLOTS_PER_CHAIR;
const PATIENTS_PER_CLINIC: usize = 50;
const CLIENTS: usize = 6;
/// Each service is killed this many times.
const KILLS_PER_SERVICE: usize = 2;
const SERVING_TIMEOUT: Duration = Duration::from_secs(90);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(150);
/// No booking for this long means a client gave up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Replays the chaos of an earlier run: the seed it printed.
const SEED_ENV: &str = "CLINICNET_TEST_CHAOS_SEED";

fn seed() -> u64 {
    std::env::var(SEED_ENV)
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random)
}

/// One booking a client makes, and whether it then checks the patient in and fulfils the visit.
struct Visit {
    slot_id: String,
    patient_id: String,
    fulfil: bool,
}

/// What the chaos does at one moment.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill(&'static str),
    RestartNats,
    RestartPostgres,
}

/// Books, checks in and fulfils `visits` in order; returns the appointment ids.
async fn client(
    channel: Channel,
    token: String,
    visits: Vec<Visit>,
    progress: Arc<AtomicUsize>,
) -> Vec<String> {
    let apps = AppointmentsServiceClient::new(channel);
    let mut booked = Vec::with_capacity(visits.len());
    for visit in visits {
        let book = appt::BookAppointmentRequest {
            request_id: request_id(),
            target: Some(appt::book_appointment_request::Target::SlotId(
                visit.slot_id.clone(),
            )),
            patient_id: visit.patient_id.clone(),
            ..Default::default()
        };
        let appointment = retrying(&apps, &book, &token, |mut c, r| async move {
            c.book_appointment(r).await
        })
        .await
        .unwrap_or_else(|status| panic!("book slot {}: {status:?}", visit.slot_id))
        .appointment
        .expect("the appointment");
        let id = appointment.appointment_id;
        if visit.fulfil {
            let check_in = appt::CheckInAppointmentRequest {
                request_id: request_id(),
                appointment_id: id.clone(),
            };
            retrying(&apps, &check_in, &token, |mut c, r| async move {
                c.check_in_appointment(r).await
            })
            .await
            .unwrap_or_else(|status| panic!("check in {id}: {status:?}"));
            let complete = appt::CompleteAppointmentRequest {
                request_id: request_id(),
                appointment_id: id.clone(),
                completion: Some(workload::session_completion()),
            };
            retrying(&apps, &complete, &token, |mut c, r| async move {
                c.complete_appointment(r).await
            })
            .await
            .unwrap_or_else(|status| panic!("complete {id}: {status:?}"));
        }
        booked.push(id);
        progress.fetch_add(1, Ordering::Relaxed);
    }
    booked
}

/// Publishes an `appointment.booked` event whose payload is not a protobuf message; both
/// consumers of appointments' events must give up on it and dead-letter it.
async fn publish_malformed_booking(network: &mut Network) -> Vec<DeadLetter> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let client = async_nats::connect(network.nats().url())
        .await
        .expect("connect to NATS");
    let jetstream = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event_id.as_str());
    jetstream
        .publish_with_headers(
            "clinicnet.appointments.appointment.booked",
            headers,
            // Field 1, length-delimited, with a truncated length: undecodable.
            vec![0x0a, 0xff].into(),
        )
        .await
        .expect("publish")
        .await
        .expect("publish ack");
    ["insurance-appointments", "notifications-appointments"]
        .into_iter()
        .map(|consumer| DeadLetter {
            consumer: consumer.into(),
            event_id: event_id.clone(),
        })
        .collect()
}

/// Each service killed [`KILLS_PER_SERVICE`] times, NATS and PostgreSQL restarted once, in a
/// random order, each at a random point between 5 % and 85 % of the bookings.
fn chaos_schedule(rng: &mut StdRng) -> Vec<(usize, Fault)> {
    let mut faults: Vec<Fault> = SERVICES
        .iter()
        .flat_map(|name| std::iter::repeat_n(Fault::Kill(name), KILLS_PER_SERVICE))
        .chain([Fault::RestartNats, Fault::RestartPostgres])
        .collect();
    faults.shuffle(rng);
    let mut moments: Vec<usize> = faults
        .iter()
        .map(|_| rng.random_range(BOOKINGS * 5 / 100..BOOKINGS * 85 / 100))
        .collect();
    moments.sort();
    moments.into_iter().zip(faults).collect()
}

async fn inflict(
    network: &mut Network,
    postgres: &PrivatePostgres,
    fault: Fault,
    rng: &mut StdRng,
) {
    let downtime = Duration::from_millis(rng.random_range(200..1500));
    match fault {
        Fault::Kill(name) => {
            let service = network.service(name);
            service.kill9().await.expect("SIGKILL");
            tokio::time::sleep(downtime).await;
            service.restart().await.expect("restart");
            service
                .wait_serving(SERVING_TIMEOUT)
                .await
                .expect("serving again");
        }
        Fault::RestartNats => {
            network.nats().stop().await.expect("stop NATS");
            tokio::time::sleep(downtime).await;
            network
                .nats()
                .start_again()
                .await
                .expect("start NATS again");
        }
        Fault::RestartPostgres => postgres.restart().await.expect("restart PostgreSQL"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bookings_survive_killed_services_and_restarted_nats_and_postgres() {
    let started = Instant::now();
    let postgres = PrivatePostgres::start()
        .await
        .expect("a private PostgreSQL");
    let mut network = Network::start(NetworkOptions {
        postgres_admin_url: Some(postgres.admin_url()),
        smtp: true,
        ..NetworkOptions::default()
    })
    .await
    .expect("the network");
    let seed = seed();
    eprintln!("chaos seed {seed} (set {SEED_ENV} to replay it)");
    let mut rng = StdRng::seed_from_u64(seed);

    workload::create_plan(&network).await;
    let mut visits = Vec::with_capacity(BOOKINGS);
    for n in 0..CLINICS {
        let clinic =
            workload::register_clinic(&network, &format!("Faults Clinic {n}"), CHAIRS_PER_CLINIC)
                .await;
        let slots = workload::offer_slots(&network, &clinic, SLOTS_PER_CHAIR).await;
        let patients = workload::register_patients(
            &network,
            &clinic.clinic_id,
            PATIENTS_PER_CLINIC,
            PatientKind {
                email: true,
                insured: true,
            },
        )
        .await;
        visits.extend(slots.into_iter().enumerate().map(|(k, slot_id)| Visit {
            slot_id,
            patient_id: patients[k % PATIENTS_PER_CLINIC].clone(),
            // Three in five visits are fulfilled; the rest stay booked.
            fulfil: k % 5 < 3,
        }));
    }
    let fulfilments = visits.iter().filter(|v| v.fulfil).count();
    eprintln!("set up in {:?}", started.elapsed());

    let expected_dead_letters = publish_malformed_booking(&mut network).await;
    let progress = Arc::new(AtomicUsize::new(0));
    let mut per_client: Vec<Vec<Visit>> = (0..CLIENTS).map(|_| Vec::new()).collect();
    for (k, visit) in visits.into_iter().enumerate() {
        per_client[k % CLIENTS].push(visit);
    }
    let channel = network.channel("appointments").await;
    let clients: Vec<_> = per_client
        .into_iter()
        .map(|visits| {
            tokio::spawn(client(
                channel.clone(),
                network.ops_token(),
                visits,
                progress.clone(),
            ))
        })
        .collect();

    let schedule = chaos_schedule(&mut rng);
    let faults = schedule.len();
    for (moment, fault) in schedule {
        let mut last = (progress.load(Ordering::Relaxed), Instant::now());
        while last.0 < moment {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = progress.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            }
            assert!(
                last.1.elapsed() < STALL_TIMEOUT,
                "no booking progressed for {STALL_TIMEOUT:?} (a client failed?)"
            );
        }
        eprintln!("{fault:?} at booking {moment}");
        inflict(&mut network, &postgres, fault, &mut rng).await;
    }
    let mut booked = Vec::new();
    for client in clients {
        booked.extend(client.await.expect("a client"));
    }
    eprintln!(
        "{} bookings ({fulfilments} fulfilled) done in {:?}, {} calls retried",
        booked.len(),
        started.elapsed(),
        workload::retries()
    );

    let settled =
        workload::wait_settled(&network, true, &expected_dead_letters, SETTLE_TIMEOUT).await;
    assert_eq!(booked.len(), BOOKINGS);
    booked.sort();
    booked.dedup();
    assert_eq!(booked.len(), BOOKINGS, "every booking its own appointment");
    assert_eq!(
        settled.appointments, BOOKINGS,
        "appointments in the database"
    );
    assert_eq!(settled.fulfilled, fulfilments, "fulfilled visits");
    assert_eq!(
        settled.confirmations_sent, BOOKINGS,
        "email confirmations sent"
    );
    eprintln!(
        "settled in {:?}: {BOOKINGS} bookings, {fulfilments} claims, {faults} faults ({} kills, one NATS restart, one PostgreSQL restart)",
        started.elapsed(),
        SERVICES.len() * KILLS_PER_SERVICE
    );
    network.stop().await;
}
