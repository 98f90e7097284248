//! Load on the whole network: 200 concurrent clients book, reschedule and cancel on the same
//! few clinics (far fewer slots than they want) for a bounded time, each keeping its own view of
//! the appointments it holds. Afterwards no active visits overlap, every client's view matches
//! the appointments API and the database (nothing more, nothing less is booked), every booking has
//! exactly one confirmation, the outboxes are drained and nothing is dead-lettered.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use clinicnet_proto::appointments::v1::{
    self as appt, PreconditionRule, appointments_service_client::AppointmentsServiceClient,
};
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use system_tests::network::{Network, NetworkOptions};
use system_tests::workload::{self, PatientKind, request_id, retrying};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

const CLIENTS: usize = 200;
const CLINICS: usize = 2;
const CHAIRS_PER_CLINIC: usize = 3;
const SLOTS_PER_CHAIR: usize = 40;
const PATIENTS_PER_CLINIC: usize = 20;
/// Most appointments a client holds at once.
const MOST_HELD: usize = 2;
const RUN_FOR: Duration = Duration::from_secs(25);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What one client did, and what it believes it holds: appointment id → slot id.
#[derive(Debug, Default)]
struct Client {
    held: BTreeMap<String, String>,
    booked: usize,
    rescheduled: usize,
    cancelled: usize,
    refused: usize,
}

/// A refusal because someone else has the slot; anything else is a failure of the test.
fn slot_taken(status: &Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status
            .get_details_precondition_failure()
            .and_then(|f| f.violations.first().map(|v| v.r#type.clone()))
            .is_some_and(|rule| rule == PreconditionRule::SlotUnavailable.as_str_name())
}

/// Books, moves and cancels at random on `slots` until `until`, then checks its view against the
/// API.
async fn client(
    channel: Channel,
    token: String,
    patient_id: String,
    slots: Vec<String>,
    seed: u64,
    until: Instant,
) -> Client {
    let apps = AppointmentsServiceClient::new(channel);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut me = Client::default();
    while Instant::now() < until {
        let slot = slots.choose(&mut rng).expect("slots").clone();
        let held: Vec<String> = me.held.keys().cloned().collect();
        let book = held.is_empty() || (held.len() < MOST_HELD && rng.random_bool(0.4));
        if book {
            let request = appt::BookAppointmentRequest {
                request_id: request_id(),
                target: Some(appt::book_appointment_request::Target::SlotId(slot)),
                patient_id: patient_id.clone(),
                ..Default::default()
            };
            match retrying(&apps, &request, &token, |mut c, r| async move {
                c.book_appointment(r).await
            })
            .await
            {
                Ok(response) => {
                    let appointment = response.appointment.expect("the appointment");
                    me.held
                        .insert(appointment.appointment_id, appointment.slot_id);
                    me.booked += 1;
                }
                Err(status) if slot_taken(&status) => me.refused += 1,
                Err(status) => panic!("book: {status:?}"),
            }
            continue;
        }
        let id = held.choose(&mut rng).expect("held").clone();
        if rng.random_bool(0.6) && me.held[&id] != slot {
            let request = appt::RescheduleAppointmentRequest {
                request_id: request_id(),
                appointment_id: id.clone(),
                target: Some(appt::reschedule_appointment_request::Target::SlotId(slot)),
            };
            match retrying(&apps, &request, &token, |mut c, r| async move {
                c.reschedule_appointment(r).await
            })
            .await
            {
                Ok(response) => {
                    let appointment = response.appointment.expect("the appointment");
                    me.held.insert(id, appointment.slot_id);
                    me.rescheduled += 1;
                }
                Err(status) if slot_taken(&status) => me.refused += 1,
                Err(status) => panic!("reschedule {id}: {status:?}"),
            }
        } else {
            let request = appt::CancelAppointmentRequest {
                request_id: request_id(),
                appointment_id: id.clone(),
                reason: appt::CancellationReason::PatientRequest as i32,
                note: String::new(),
            };
            retrying(&apps, &request, &token, |mut c, r| async move {
                c.cancel_appointment(r).await
            })
            .await
            .unwrap_or_else(|status| panic!("cancel {id}: {status:?}"));
            me.held.remove(&id);
            me.cancelled += 1;
        }
    }
    for (id, slot_id) in &me.held {
        let request = appt::GetAppointmentRequest {
            appointment_id: id.clone(),
        };
        let appointment = retrying(&apps, &request, &token, |mut c, r| async move {
            c.get_appointment(r).await
        })
        .await
        .unwrap_or_else(|status| panic!("get {id}: {status:?}"))
        .appointment
        .expect("the appointment");
        assert_eq!(
            appointment.status(),
            appt::AppointmentStatus::Booked,
            "{id}"
        );
        assert_eq!(
            &appointment.slot_id, slot_id,
            "{id}: the slot the client holds"
        );
        assert_eq!(appointment.patient_id, patient_id, "{id}");
    }
    me
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_booking_moving_and_cancelling_agree_with_the_database() {
    let started = Instant::now();
    let network = Network::start(NetworkOptions::default())
        .await
        .expect("the network");
    let mut clinics = Vec::new();
    for n in 0..CLINICS {
        let clinic =
            workload::register_clinic(&network, &format!("Load Clinic {n}"), CHAIRS_PER_CLINIC)
                .await;
        let slots = workload::offer_slots(&network, &clinic, SLOTS_PER_CHAIR).await;
        let patients = workload::register_patients(
            &network,
            &clinic.clinic_id,
            PATIENTS_PER_CLINIC,
            PatientKind {
                email: false,
                insured: false,
            },
        )
        .await;
        clinics.push((slots, patients));
    }
    let seed: u64 = rand::random();
    eprintln!("set up in {:?}; seed {seed}", started.elapsed());

    let channel = network.channel("appointments").await;
    let until = Instant::now() + RUN_FOR;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (slots, patients) = &clinics[c % CLINICS];
            tokio::spawn(client(
                channel.clone(),
                network.ops_token(),
                patients[c / CLINICS % PATIENTS_PER_CLINIC].clone(),
                slots.clone(),
                seed.wrapping_add(c as u64),
                until,
            ))
        })
        .collect();
    let mut views = Vec::with_capacity(CLIENTS);
    for task in tasks {
        views.push(task.await.expect("a client"));
    }
    let total = |count: fn(&Client) -> usize| views.iter().map(count).sum::<usize>();
    let (booked, rescheduled, cancelled, refused) = (
        total(|c| c.booked),
        total(|c| c.rescheduled),
        total(|c| c.cancelled),
        total(|c| c.refused),
    );
    eprintln!(
        "{CLIENTS} clients in {RUN_FOR:?}: {booked} booked, {rescheduled} rescheduled, {cancelled} cancelled, {refused} refused (slot taken), {} retried",
        workload::retries()
    );
    assert!(booked > 0 && rescheduled > 0 && cancelled > 0 && refused > 0);

    let mut held: HashMap<String, String> = HashMap::new();
    for view in &views {
        for (id, slot) in &view.held {
            assert!(
                held.insert(id.clone(), slot.clone()).is_none(),
                "{id} held by two clients"
            );
        }
    }
    let in_database: HashMap<String, String> = sqlx::query_as(
        "SELECT appointment_id::text, slot_id::text FROM appointments WHERE status = 'booked'",
    )
    .fetch_all(network.database("appointments").pool())
    .await
    .expect("booked appointments")
    .into_iter()
    .collect();
    assert_eq!(
        in_database, held,
        "the booked appointments are exactly those the clients hold, on their slots"
    );
    let settled = workload::wait_settled(&network, false, &[], SETTLE_TIMEOUT).await;
    assert_eq!(settled.appointments, booked, "one appointment per booking");
    eprintln!(
        "settled in {:?}: {} appointments, {} held at the end",
        started.elapsed(),
        settled.appointments,
        held.len()
    );
    network.stop().await;
}
