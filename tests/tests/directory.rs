//! The directory service end to end: the real `directory` binary over gRPC, on its own fresh
//! PostgreSQL database and real NATS JetStream. Validation names each field, optimistic
//! concurrency never loses a write, search filters (alone and combined, radius edges, each
//! clinic's own calendar, suspended clinics, stable paging), the authorization matrix of every
//! RPC, and a read model rebuilt from the DIRECTORY stream alone that equals the directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use clinicnet_proto::common::v1::{self as common, Modality};
use clinicnet_proto::directory::v1::{
    self as pb, directory_service_client::DirectoryServiceClient,
};
use clinicnet_proto::events::v1 as ev;
use futures::StreamExt as _;
use jiff::tz::TimeZone;
use platform::auth::{Role, claims, mint_hs256};
use platform::error::violated_fields;
use prost::Message as _;
use system_tests::fixtures::{
    clinic, clinic_with, date, days_from_today, hours_on, location, provider, range, rems, today_in,
};
use system_tests::{PrivateNats, ServiceProcess, ServiceSpec, TestDatabase, infra};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::Channel;
use tonic::{Code, Status};

const SECRET: &str = "directory-system-test-secret";
const MIAMI: (f64, f64) = (25.7617, -80.1918);
const IV: i32 = Modality::IvKetamine as i32;
const ESKETAMINE: i32 = Modality::EsketamineNasalSpray as i32;
const LOZENGE: i32 = Modality::OralKetamineLozenge as i32;
const INTEGRATION: i32 = Modality::IntegrationTherapy as i32;
const PSYCHOTHERAPY: i32 = Modality::Psychotherapy as i32;
const TELEHEALTH: i32 = Modality::Telehealth as i32;

// ---------------------------------------------------------------------------------------------
// Harness: one directory process on its own database, and clients holding a caller's token.
// ---------------------------------------------------------------------------------------------

/// Sends a bearer token (or none) with every call.
#[derive(Clone)]
struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Client = DirectoryServiceClient<InterceptedService<Channel, Bearer>>;

/// Who calls.
#[derive(Debug, Clone)]
enum Who {
    Nobody,
    Partner(Vec<String>),
    Integrator,
    Ops,
    /// An ops token signed with the wrong key.
    Forger,
}

struct Directory {
    database: TestDatabase,
    process: ServiceProcess,
    channel: Channel,
}

impl Directory {
    /// A directory on a fresh database, publishing to the NATS server every test shares.
    async fn start() -> Directory {
        Directory::start_on(&infra::nats_url()).await
    }

    async fn start_on(nats_url: &str) -> Directory {
        let database = TestDatabase::create("directory").await;
        let mut process = ServiceProcess::spawn(
            ServiceSpec::new("directory")
                .env("DATABASE_URL", database.url())
                .env("NATS_URL", nats_url)
                .env("JWT_HS256_SECRET", SECRET),
        )
        .await
        .expect("start the directory");
        process
            .wait_serving(Duration::from_secs(60))
            .await
            .expect("the directory serves");
        let channel = process.channel().await.expect("connect to the directory");
        Directory {
            database,
            process,
            channel,
        }
    }

    fn client(&self, who: &Who) -> Client {
        let token = |secret: &str, role, clinic_ids, payer_id| {
            let claims = claims("system-test", role, clinic_ids, payer_id, 3600);
            mint_hs256(secret, &claims).expect("mint a token")
        };
        let token = match who {
            Who::Nobody => None,
            Who::Partner(clinics) => {
                Some(token(SECRET, Role::PartnerClinic, clinics.clone(), None))
            }
            Who::Integrator => Some(token(
                SECRET,
                Role::Integrator,
                vec![],
                Some("payer-a".into()),
            )),
            Who::Ops => Some(token(SECRET, Role::Ops, vec![], None)),
            Who::Forger => Some(token("not-the-secret", Role::Ops, vec![], None)),
        };
        let header = token.map(|t| format!("Bearer {t}").parse().expect("ascii token"));
        DirectoryServiceClient::with_interceptor(self.channel.clone(), Bearer(header))
    }

    fn ops(&self) -> Client {
        self.client(&Who::Ops)
    }

    async fn stop(mut self) {
        self.process.sigterm().expect("SIGTERM");
        let status = self
            .process
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("the directory exits");
        assert!(status.success(), "the directory exited with {status}");
        self.database.drop_db().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures: valid clinics and providers, and the small values they are made of.
// ---------------------------------------------------------------------------------------------

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn create(client: &mut Client, clinic: pb::Clinic) -> pb::Clinic {
    let name = clinic.display_name.clone();
    client
        .create_clinic(pb::CreateClinicRequest {
            request_id: request_id(),
            clinic: Some(clinic),
        })
        .await
        .unwrap_or_else(|status| panic!("create clinic {name}: {status:?}"))
        .into_inner()
        .clinic
        .expect("the created clinic")
}

async fn create_provider(client: &mut Client, provider: pb::Provider) -> pb::Provider {
    client
        .create_provider(pb::CreateProviderRequest {
            request_id: request_id(),
            provider: Some(provider),
        })
        .await
        .unwrap_or_else(|status| panic!("create provider: {status:?}"))
        .into_inner()
        .provider
        .expect("the created provider")
}

async fn get(client: &mut Client, clinic_id: &str) -> pb::Clinic {
    client
        .get_clinic(pb::GetClinicRequest {
            clinic_id: clinic_id.into(),
        })
        .await
        .expect("get clinic")
        .into_inner()
        .clinic
        .expect("a clinic")
}

async fn update(client: &mut Client, clinic: pb::Clinic) -> Result<pb::Clinic, Status> {
    let expected_version = clinic.version;
    let response = client
        .update_clinic(pb::UpdateClinicRequest {
            request_id: request_id(),
            clinic: Some(clinic),
            expected_version,
        })
        .await?;
    Ok(response.into_inner().clinic.expect("the updated clinic"))
}

async fn suspend(client: &mut Client, clinic: &pb::Clinic) -> Result<pb::Clinic, Status> {
    let response = client
        .suspend_clinic(pb::SuspendClinicRequest {
            request_id: request_id(),
            clinic_id: clinic.clinic_id.clone(),
            expected_version: clinic.version,
            reason: "Medical director on leave".into(),
        })
        .await?;
    Ok(response.into_inner().clinic.expect("the suspended clinic"))
}

async fn reactivate(client: &mut Client, clinic: &pb::Clinic) -> Result<pb::Clinic, Status> {
    let response = client
        .reactivate_clinic(pb::ReactivateClinicRequest {
            request_id: request_id(),
            clinic_id: clinic.clinic_id.clone(),
            expected_version: clinic.version,
        })
        .await?;
    Ok(response
        .into_inner()
        .clinic
        .expect("the reactivated clinic"))
}

/// Every result of a search, page after page.
async fn search_all(
    client: &mut Client,
    request: pb::SearchClinicsRequest,
) -> Vec<pb::ClinicSearchResult> {
    let mut request = pb::SearchClinicsRequest {
        page_size: 2,
        ..request
    };
    let mut results = Vec::new();
    loop {
        let page = client
            .search_clinics(request.clone())
            .await
            .unwrap_or_else(|status| panic!("search {request:?}: {status:?}"))
            .into_inner();
        results.extend(page.results);
        if page.next_page_token.is_empty() {
            return results;
        }
        request.page_token = page.next_page_token;
    }
}

/// The names of the clinics a search finds, in result order.
async fn found(client: &mut Client, request: pb::SearchClinicsRequest) -> Vec<String> {
    search_all(client, request)
        .await
        .into_iter()
        .map(|result| result.clinic.expect("a clinic").display_name)
        .collect()
}

/// Every clinic, page after page.
async fn list_all(client: &mut Client, status: pb::ClinicStatus) -> Vec<pb::Clinic> {
    let mut request = pb::ListClinicsRequest {
        page_size: 2,
        page_token: String::new(),
        status: status as i32,
    };
    let mut clinics = Vec::new();
    loop {
        let page = client
            .list_clinics(request.clone())
            .await
            .expect("list clinics")
            .into_inner();
        clinics.extend(page.clinics);
        if page.next_page_token.is_empty() {
            return clinics;
        }
        request.page_token = page.next_page_token;
    }
}

/// Every provider (serving `clinic_id` when not empty), page after page.
async fn providers_of(client: &mut Client, clinic_id: &str) -> Vec<pb::Provider> {
    let mut request = pb::ListProvidersRequest {
        page_size: 2,
        page_token: String::new(),
        clinic_id: clinic_id.into(),
    };
    let mut providers = Vec::new();
    loop {
        let page = client
            .list_providers(request.clone())
            .await
            .expect("list providers")
            .into_inner();
        providers.extend(page.providers);
        if page.next_page_token.is_empty() {
            return providers;
        }
        request.page_token = page.next_page_token;
    }
}

fn assert_invalid(result: Result<impl std::fmt::Debug, Status>, field: &str, case: &str) {
    match result {
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
            let fields = violated_fields(&status);
            assert!(
                fields.iter().any(|f| f == field),
                "{case}: expected a violation of {field}, got {fields:?}"
            );
        }
        Ok(answer) => panic!("{case}: accepted: {answer:?}"),
    }
}

fn code_of<T>(result: &Result<T, Status>) -> Code {
    result.as_ref().map_or_else(Status::code, |_| Code::Ok)
}

// ---------------------------------------------------------------------------------------------
// Validation: every rule, with the field it names; a rejected call writes nothing.
// ---------------------------------------------------------------------------------------------

type Edit = fn(&mut pb::Clinic);

/// Each rule of the profile: what breaks it, and the field the error must name.
const CLINIC_RULES: &[(&str, Edit, &str)] = &[
    (
        "NPI check digit",
        |c| c.npi = "1234567890".into(),
        "clinic.npi",
    ),
    ("NPI length", |c| c.npi = "123456789".into(), "clinic.npi"),
    (
        "IANA time zone",
        |c| c.time_zone = "America/Miami".into(),
        "clinic.time_zone",
    ),
    (
        "IANA spelling",
        |c| c.time_zone = "america/new_york".into(),
        "clinic.time_zone",
    ),
    (
        "latitude range",
        |c| {
            c.locations[0].coordinates = Some(common::GeoPoint {
                latitude: 90.5,
                longitude: -80.2,
            })
        },
        "clinic.locations[0].coordinates.latitude",
    ),
    (
        "longitude range",
        |c| {
            c.locations[0].coordinates = Some(common::GeoPoint {
                latitude: 25.7,
                longitude: -180.5,
            })
        },
        "clinic.locations[0].coordinates.longitude",
    ),
    (
        "coordinates required",
        |c| c.locations[0].coordinates = None,
        "clinic.locations[0].coordinates",
    ),
    (
        "E.164 front desk",
        |c| c.contact.as_mut().unwrap().phone = "(305) 555-0100".into(),
        "clinic.contact.phone",
    ),
    (
        "E.164 on call",
        |c| c.contact.as_mut().unwrap().on_call.as_mut().unwrap().phone = "3055550199".into(),
        "clinic.contact.on_call.phone",
    ),
    (
        "weekly hours overlap",
        |c| {
            c.weekly_hours.as_mut().unwrap().days[0].intervals =
                vec![range((9, 0), (13, 0)), range((12, 30), (17, 0))]
        },
        "clinic.weekly_hours.days[0].intervals[1]",
    ),
    (
        "weekly hours end before start",
        |c| c.weekly_hours.as_mut().unwrap().days[2].intervals = vec![range((17, 0), (9, 0))],
        "clinic.weekly_hours.days[2].intervals[0]",
    ),
    (
        "weekday twice",
        |c| c.weekly_hours.as_mut().unwrap().days[1].day_of_week = 1,
        "clinic.weekly_hours.days[1].day_of_week",
    ),
    (
        "override hours overlap",
        |c| {
            c.date_overrides = vec![pb::DateOverride {
                date: Some(common::Date {
                    year: 2026,
                    month: 12,
                    day: 24,
                }),
                closed: false,
                intervals: vec![range((8, 0), (12, 0)), range((11, 0), (14, 0))],
                reason: "Christmas Eve".into(),
            }]
        },
        "clinic.date_overrides[0].intervals[1]",
    ),
    (
        "esketamine without REMS",
        |c| c.rems_certification = None,
        "clinic.rems_certification",
    ),
    (
        "esketamine with expired REMS",
        |c| c.rems_certification = Some(rems(days_from_today(-2))),
        "clinic.rems_certification.expires_on",
    ),
    (
        "language subtag",
        |c| c.languages = vec!["en".into(), "ES".into()],
        "clinic.languages[1]",
    ),
    (
        "email",
        |c| c.contact.as_mut().unwrap().email = "frontdesk".into(),
        "clinic.contact.email",
    ),
    (
        "chair modality not offered",
        |c| c.chairs[0].modalities = vec![LOZENGE],
        "clinic.chairs[0].modalities[0]",
    ),
    (
        "chair capacity",
        |c| c.chairs[0].capacity = 0,
        "clinic.chairs[0].capacity",
    ),
    (
        "chair location",
        |c| c.chairs[0].location_id = "annex".into(),
        "clinic.chairs[0].location_id",
    ),
    (
        "REMS monitoring minimum",
        |c| {
            c.scheduling_policy
                .as_mut()
                .unwrap()
                .esketamine_monitoring_minutes = 90
        },
        "clinic.scheduling_policy.esketamine_monitoring_minutes",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_rule_names_its_field() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();

    for (rule, edit, field) in CLINIC_RULES {
        let result = ops
            .create_clinic(pb::CreateClinicRequest {
                request_id: request_id(),
                clinic: Some(clinic_with(rule, edit)),
            })
            .await;
        assert_invalid(result, field, &format!("CreateClinic: {rule}"));
    }
    assert!(
        list_all(&mut ops, pb::ClinicStatus::Unspecified)
            .await
            .is_empty(),
        "a rejected create wrote a clinic"
    );

    // UpdateClinic checks the same rules; the clinic stays as it was.
    let stored = create(&mut ops, clinic("Ketamine Health Centers")).await;
    for (rule, edit, field) in CLINIC_RULES
        .iter()
        .filter(|(_, _, field)| !field.contains("chairs"))
    {
        let mut changed = stored.clone();
        edit(&mut changed);
        assert_invalid(
            update(&mut ops, changed).await,
            field,
            &format!("UpdateClinic: {rule}"),
        );
    }
    assert_eq!(
        get(&mut ops, &stored.clinic_id).await,
        stored,
        "a rejected update changed the clinic"
    );

    // A second clinic may not take an NPI that is registered.
    let twin = clinic_with("Twin", |c| c.npi = stored.npi.clone());
    let result = ops
        .create_clinic(pb::CreateClinicRequest {
            request_id: request_id(),
            clinic: Some(twin),
        })
        .await;
    assert_eq!(code_of(&result), Code::AlreadyExists, "{result:?}");

    // Chairs: a modality the clinic does not offer, and a capacity out of range.
    let chair = |edit: fn(&mut pb::Chair)| {
        let mut chair = pb::Chair {
            location_id: "main".into(),
            display_name: "Spravato room".into(),
            modalities: vec![ESKETAMINE],
            capacity: 2,
            ..Default::default()
        };
        edit(&mut chair);
        pb::UpsertChairRequest {
            request_id: request_id(),
            clinic_id: stored.clinic_id.clone(),
            expected_version: stored.version,
            chair: Some(chair),
        }
    };
    let not_offered = ops
        .upsert_chair(chair(|c| c.modalities = vec![PSYCHOTHERAPY]))
        .await;
    assert_invalid(
        not_offered,
        "chair.modalities[0]",
        "UpsertChair: modality not offered",
    );
    let too_big = ops.upsert_chair(chair(|c| c.capacity = 51)).await;
    assert_invalid(too_big, "chair.capacity", "UpsertChair: capacity");
    let unknown_location = ops
        .upsert_chair(chair(|c| c.location_id = "annex".into()))
        .await;
    assert_eq!(
        code_of(&unknown_location),
        Code::NotFound,
        "{unknown_location:?}"
    );

    // Providers: the NPI check digit, and an expired licence marked current.
    let bad_npi = pb::Provider {
        npi: "1234567890".into(),
        ..provider(&[&stored.clinic_id])
    };
    let result = ops
        .create_provider(pb::CreateProviderRequest {
            request_id: request_id(),
            provider: Some(bad_npi),
        })
        .await;
    assert_invalid(result, "provider.npi", "CreateProvider: NPI");
    let mut lapsed = provider(&[&stored.clinic_id]);
    lapsed.licenses[0].expires_on = Some(date(days_from_today(-3)));
    let result = ops
        .create_provider(pb::CreateProviderRequest {
            request_id: request_id(),
            provider: Some(lapsed.clone()),
        })
        .await;
    assert_invalid(
        result,
        "provider.licenses[0].current",
        "CreateProvider: expired licence marked current",
    );
    // The same licence kept for history, not current, is fine.
    lapsed.licenses[0].current = false;
    let kept = create_provider(&mut ops, lapsed).await;
    let mut relapsed = kept.clone();
    relapsed.licenses[0].current = true;
    let result = ops
        .update_provider(pb::UpdateProviderRequest {
            request_id: request_id(),
            expected_version: kept.version,
            provider: Some(relapsed),
        })
        .await;
    assert_invalid(
        result,
        "provider.licenses[0].current",
        "UpdateProvider: expired licence marked current",
    );

    // Search: a radius needs a point, the radius and the point have ranges, tokens their filters.
    let near = |latitude, radius_km| pb::SearchClinicsRequest {
        near: Some(common::GeoPoint {
            latitude,
            longitude: MIAMI.1,
        }),
        radius_km,
        ..Default::default()
    };
    let cases = [
        (
            "radius without a point",
            pb::SearchClinicsRequest {
                radius_km: 10.0,
                ..Default::default()
            },
            "radius_km",
        ),
        ("point without a radius", near(MIAMI.0, 0.0), "radius_km"),
        ("radius above 500 km", near(MIAMI.0, 500.5), "radius_km"),
        ("negative radius", near(MIAMI.0, -1.0), "radius_km"),
        ("latitude of the point", near(91.0, 10.0), "near.latitude"),
        (
            "language filter",
            pb::SearchClinicsRequest {
                language: "Spanish".into(),
                ..Default::default()
            },
            "language",
        ),
    ];
    for (case, request, field) in cases {
        assert_invalid(
            ops.search_clinics(request).await,
            field,
            &format!("SearchClinics: {case}"),
        );
    }
    create(&mut ops, clinic("Second")).await;
    let first = ops
        .search_clinics(pb::SearchClinicsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("search")
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let other_filters = pb::SearchClinicsRequest {
        page_size: 1,
        page_token: first.next_page_token,
        language: "es".into(),
        ..Default::default()
    };
    assert_invalid(
        ops.search_clinics(other_filters).await,
        "page_token",
        "SearchClinics: token of other filters",
    );

    directory.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Optimistic concurrency.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_one_version_one_wins_the_rest_are_aborted_and_nothing_is_lost() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();
    let original = create(
        &mut ops,
        clinic("Ketamine & Wellness Clinic of South Florida"),
    )
    .await;
    let partner = directory.client(&Who::Partner(vec![original.clinic_id.clone()]));

    // Eight writers read version 1 and each adds its own payer, all at once.
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let mut client = if n % 2 == 0 {
                ops.clone()
            } else {
                partner.clone()
            };
            let mut changed = original.clone();
            changed.in_network_payer_ids.push(format!("payer-{n}"));
            tokio::spawn(async move { (n, update(&mut client, changed).await) })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for writer in writers {
        let (n, result) = writer.await.expect("a writer");
        match result {
            Ok(clinic) => winners.push((n, clinic)),
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "writer {n}: {status:?}");
                losers.push(n);
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer of version 1 wins: {winners:?}"
    );
    let (winner, written) = winners.remove(0);
    assert_eq!(written.version, original.version + 1);
    let current = get(&mut ops, &original.clinic_id).await;
    assert_eq!(current, written, "the winner's answer is the stored clinic");
    assert!(
        current
            .in_network_payer_ids
            .contains(&format!("payer-{winner}"))
    );

    // Each loser re-reads and retries: every change ends up in the clinic, none overwritten.
    for n in &losers {
        let mut fresh = get(&mut ops, &original.clinic_id).await;
        fresh.in_network_payer_ids.push(format!("payer-{n}"));
        update(&mut ops, fresh)
            .await
            .expect("a retry on the current version");
    }
    let last = get(&mut ops, &original.clinic_id).await;
    assert_eq!(last.version, original.version + 8);
    for n in 0..8 {
        assert!(
            last.in_network_payer_ids.contains(&format!("payer-{n}")),
            "payer-{n} lost: {:?}",
            last.in_network_payer_ids
        );
    }

    // A write from a stale read is refused, and so is a chair change or a suspension on it.
    let stale = update(&mut ops, written.clone()).await;
    assert_eq!(code_of(&stale), Code::Aborted, "{stale:?}");
    let stale_suspend = suspend(&mut ops, &written).await;
    assert_eq!(code_of(&stale_suspend), Code::Aborted, "{stale_suspend:?}");
    let stale_chair = ops
        .remove_chair(pb::RemoveChairRequest {
            request_id: request_id(),
            clinic_id: written.clinic_id.clone(),
            chair_id: written.chairs[0].chair_id.clone(),
            expected_version: written.version,
        })
        .await;
    assert_eq!(code_of(&stale_chair), Code::Aborted, "{stale_chair:?}");
    assert_eq!(get(&mut ops, &original.clinic_id).await, last);

    directory.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Search.
// ---------------------------------------------------------------------------------------------

fn at(point: (f64, f64)) -> Option<common::GeoPoint> {
    Some(common::GeoPoint {
        latitude: point.0,
        longitude: point.1,
    })
}

fn day(year: i16, month: i8, day: i8) -> Option<common::Date> {
    Some(date(jiff::civil::date(year, month, day)))
}

/// Sorted names, to compare result sets whatever their order.
fn names(found: Vec<String>) -> Vec<String> {
    let mut found = found;
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_select_alone_and_combined_and_hide_suspended_clinics() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();
    let therapy_room = |modality| pb::Chair {
        location_id: "main".into(),
        display_name: "Room 1".into(),
        modalities: vec![modality],
        capacity: 4,
        ..Default::default()
    };
    create(
        &mut ops,
        clinic_with("Alpha", |c| {
            c.modalities = vec![IV];
            c.languages = vec!["en".into()];
            c.in_network_payer_ids = vec!["p1".into()];
            c.rems_certification = None;
        }),
    )
    .await;
    create(
        &mut ops,
        clinic_with("Bravo", |c| {
            c.modalities = vec![IV, ESKETAMINE];
            c.in_network_payer_ids = vec!["p1".into(), "p2".into()];
        }),
    )
    .await;
    create(
        &mut ops,
        clinic_with("Charlie", |c| {
            c.modalities = vec![PSYCHOTHERAPY, TELEHEALTH];
            c.languages = vec!["es".into()];
            c.in_network_payer_ids = vec!["p2".into()];
            c.rems_certification = None;
            c.weekly_hours = Some(hours_on(&[6]));
            c.chairs = vec![therapy_room(PSYCHOTHERAPY)];
        }),
    )
    .await;
    create(
        &mut ops,
        clinic_with("Delta", |c| {
            c.modalities = vec![INTEGRATION];
            c.languages = vec!["ht".into(), "en".into()];
            c.in_network_payer_ids = vec![];
            c.weekly_hours = Some(hours_on(&[1, 3]));
            c.chairs = vec![therapy_room(INTEGRATION)];
        }),
    )
    .await;
    create(
        &mut ops,
        clinic_with("Echo", |c| {
            c.modalities = vec![LOZENGE];
            c.languages = vec!["es".into()];
            c.in_network_payer_ids = vec!["p3".into()];
            c.rems_certification = None;
            c.locations = vec![location("main", 28.5384, -81.3789)]; // Orlando
            c.chairs = vec![therapy_room(LOZENGE)];
        }),
    )
    .await;
    // Foxtrot would match many searches below, but it is suspended.
    let foxtrot = create(
        &mut ops,
        clinic_with("Foxtrot", |c| {
            c.languages = vec!["es".into(), "en".into(), "ht".into()];
            c.in_network_payer_ids = vec!["p1".into(), "p2".into(), "p3".into()];
            c.weekly_hours = Some(hours_on(&[1, 2, 3, 4, 5, 6, 7]));
        }),
    )
    .await;
    suspend(&mut ops, &foxtrot).await.expect("suspend Foxtrot");

    let any = pb::SearchClinicsRequest::default;
    let cases: Vec<(&str, pb::SearchClinicsRequest, &[&str])> = vec![
        (
            "no filter",
            any(),
            &["Alpha", "Bravo", "Charlie", "Delta", "Echo"],
        ),
        (
            "modality IV",
            pb::SearchClinicsRequest {
                modality: IV,
                ..any()
            },
            &["Alpha", "Bravo"],
        ),
        (
            "modality esketamine",
            pb::SearchClinicsRequest {
                modality: ESKETAMINE,
                ..any()
            },
            &["Bravo"],
        ),
        (
            "modality psychotherapy",
            pb::SearchClinicsRequest {
                modality: PSYCHOTHERAPY,
                ..any()
            },
            &["Charlie"],
        ),
        (
            "language es",
            pb::SearchClinicsRequest {
                language: "es".into(),
                ..any()
            },
            &["Bravo", "Charlie", "Echo"],
        ),
        (
            "language ht",
            pb::SearchClinicsRequest {
                language: "ht".into(),
                ..any()
            },
            &["Delta"],
        ),
        (
            "payer p2",
            pb::SearchClinicsRequest {
                payer_id: "p2".into(),
                ..any()
            },
            &["Bravo", "Charlie"],
        ),
        (
            "unknown payer",
            pb::SearchClinicsRequest {
                payer_id: "p9".into(),
                ..any()
            },
            &[],
        ),
        (
            "REMS certified",
            pb::SearchClinicsRequest {
                rems_certified: Some(true),
                ..any()
            },
            &["Bravo", "Delta"],
        ),
        (
            "not REMS certified",
            pb::SearchClinicsRequest {
                rems_certified: Some(false),
                ..any()
            },
            &["Alpha", "Charlie", "Echo"],
        ),
        (
            "open on a Saturday",
            pb::SearchClinicsRequest {
                open_on: day(2026, 11, 28),
                ..any()
            },
            &["Charlie"],
        ),
        (
            "open on a Wednesday",
            pb::SearchClinicsRequest {
                open_on: day(2026, 11, 25),
                ..any()
            },
            &["Alpha", "Bravo", "Delta", "Echo"],
        ),
        (
            "open on a Tuesday",
            pb::SearchClinicsRequest {
                open_on: day(2026, 11, 24),
                ..any()
            },
            &["Alpha", "Bravo", "Echo"],
        ),
        (
            "open on a Sunday",
            pb::SearchClinicsRequest {
                open_on: day(2026, 11, 29),
                ..any()
            },
            &[],
        ),
        (
            "within 50 km of Miami",
            pb::SearchClinicsRequest {
                near: at(MIAMI),
                radius_km: 50.0,
                ..any()
            },
            &["Alpha", "Bravo", "Charlie", "Delta"],
        ),
        (
            "IV in Spanish",
            pb::SearchClinicsRequest {
                modality: IV,
                language: "es".into(),
                ..any()
            },
            &["Bravo"],
        ),
        (
            "Spanish and p2",
            pb::SearchClinicsRequest {
                language: "es".into(),
                payer_id: "p2".into(),
                ..any()
            },
            &["Bravo", "Charlie"],
        ),
        (
            "Spanish on a Saturday",
            pb::SearchClinicsRequest {
                language: "es".into(),
                open_on: day(2026, 11, 28),
                ..any()
            },
            &["Charlie"],
        ),
        (
            "Spanish near Miami",
            pb::SearchClinicsRequest {
                language: "es".into(),
                near: at(MIAMI),
                radius_km: 50.0,
                ..any()
            },
            &["Bravo", "Charlie"],
        ),
        (
            "Spanish without REMS",
            pb::SearchClinicsRequest {
                language: "es".into(),
                rems_certified: Some(false),
                ..any()
            },
            &["Charlie", "Echo"],
        ),
        (
            "IV without REMS in English",
            pb::SearchClinicsRequest {
                modality: IV,
                rems_certified: Some(false),
                language: "en".into(),
                ..any()
            },
            &["Alpha"],
        ),
        (
            "every filter at once",
            pb::SearchClinicsRequest {
                modality: ESKETAMINE,
                language: "en".into(),
                payer_id: "p1".into(),
                open_on: day(2026, 11, 24),
                rems_certified: Some(true),
                near: at(MIAMI),
                radius_km: 50.0,
                ..any()
            },
            &["Bravo"],
        ),
        (
            "psychotherapy in Haitian Creole",
            pb::SearchClinicsRequest {
                modality: PSYCHOTHERAPY,
                language: "ht".into(),
                ..any()
            },
            &[],
        ),
    ];
    for (case, request, expected) in cases {
        let found = found(&mut ops, request).await;
        assert_eq!(names(found), *expected, "{case}");
    }

    // Every role may search; Foxtrot comes back once it is reactivated.
    let foxtrot = get(&mut ops, &foxtrot.clinic_id).await;
    assert_eq!(foxtrot.status, pb::ClinicStatus::Suspended as i32);
    assert_eq!(foxtrot.suspension_reason, "Medical director on leave");
    let mut integrator = directory.client(&Who::Integrator);
    assert!(
        !found(&mut integrator, any())
            .await
            .contains(&"Foxtrot".to_owned())
    );
    let suspended = list_all(&mut ops, pb::ClinicStatus::Suspended).await;
    assert_eq!(
        suspended
            .iter()
            .map(|c| c.display_name.as_str())
            .collect::<Vec<_>>(),
        ["Foxtrot"]
    );
    let again = suspend(&mut ops, &foxtrot).await;
    assert_eq!(code_of(&again), Code::FailedPrecondition, "{again:?}");
    let back = reactivate(&mut ops, &foxtrot)
        .await
        .expect("reactivate Foxtrot");
    assert_eq!(
        (back.status, back.suspension_reason.as_str()),
        (pb::ClinicStatus::Active as i32, "")
    );
    let again = reactivate(&mut ops, &back).await;
    assert_eq!(code_of(&again), Code::FailedPrecondition, "{again:?}");
    let spanish = pb::SearchClinicsRequest {
        language: "es".into(),
        payer_id: "p2".into(),
        ..any()
    };
    assert_eq!(
        names(found(&mut integrator, spanish).await),
        ["Bravo", "Charlie", "Foxtrot"]
    );

    directory.stop().await;
}

/// Mean Earth radius the directory measures with, in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The point `km` due north of `from`.
fn north_of(from: (f64, f64), km: f64) -> (f64, f64) {
    (from.0 + (km / EARTH_RADIUS_KM).to_degrees(), from.1)
}

/// The point on the same parallel whose great-circle distance from `from` is `km`, to the east.
fn east_of(from: (f64, f64), km: f64) -> (f64, f64) {
    let spread = 2.0 * ((km / (2.0 * EARTH_RADIUS_KM)).sin() / from.0.to_radians().cos()).asin();
    (from.0, from.1 + spread.to_degrees())
}

fn clinic_at(name: &str, sites: &[(&str, (f64, f64))]) -> pb::Clinic {
    clinic_with(name, |c| {
        c.locations = sites
            .iter()
            .map(|(id, (lat, lng))| location(id, *lat, *lng))
            .collect();
        c.chairs[0].location_id = sites[0].0.into();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distance_search_keeps_the_radius_edges_and_sorts_by_the_nearest_location() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();
    let sites = [
        ("North inside", north_of(MIAMI, 9.995)),
        ("North outside", north_of(MIAMI, 10.005)),
        ("East inside", east_of(MIAMI, 9.99)),
        ("East outside", east_of(MIAMI, 10.01)),
        ("Center", MIAMI),
    ];
    for (name, point) in sites {
        create(&mut ops, clinic_at(name, &[("main", point)])).await;
    }
    // Nearest location wins: 40 km north, and 3 km south.
    let two_sites = clinic_at(
        "Two sites",
        &[
            ("far", north_of(MIAMI, 40.0)),
            ("near", north_of(MIAMI, -3.0)),
        ],
    );
    create(&mut ops, two_sites).await;

    let within = |radius_km| pb::SearchClinicsRequest {
        near: at(MIAMI),
        radius_km,
        ..Default::default()
    };
    let results = search_all(&mut ops, within(10.0)).await;
    let seen: Vec<(String, String, f64)> = results
        .iter()
        .map(|r| {
            let clinic = r.clinic.as_ref().expect("a clinic");
            (
                clinic.display_name.clone(),
                r.nearest_location_id.clone(),
                r.distance_km.expect("a distance"),
            )
        })
        .collect();
    let expected = [
        ("Center", "main", 0.0),
        ("Two sites", "near", 3.0),
        ("East inside", "main", 9.99),
        ("North inside", "main", 9.995),
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    for ((name, location, distance), (want_name, want_location, want_distance)) in
        seen.iter().zip(expected)
    {
        assert_eq!(
            (name.as_str(), location.as_str()),
            (want_name, want_location),
            "{seen:?}"
        );
        assert!(
            (distance - want_distance).abs() < 1e-6,
            "{name}: {distance} km, expected {want_distance}"
        );
    }

    // The largest radius finds every clinic, still by distance; a tiny one only the center.
    let everything = search_all(&mut ops, within(500.0)).await;
    assert_eq!(everything.len(), 6);
    let distances: Vec<f64> = everything
        .iter()
        .map(|r| r.distance_km.expect("a distance"))
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert_eq!(found(&mut ops, within(0.001)).await, ["Center"]);

    // Without a point there is no distance.
    let plain = search_all(&mut ops, pb::SearchClinicsRequest::default()).await;
    assert!(
        plain
            .iter()
            .all(|r| r.distance_km.is_none() && r.nearest_location_id.is_empty())
    );

    directory.stop().await;
}

/// Waits until a minute past midnight in `zone` when its day ends within a minute, so a test
/// that reasons about "today" there does not straddle two days.
async fn not_at_midnight_in(zone: &str) {
    let zone = TimeZone::get(zone).expect("a zone");
    let now = jiff::Timestamp::now();
    let next_day = now
        .to_zoned_datetime(zone.clone())
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned_datetime(zone))
        .expect("tomorrow")
        .timestamp();
    let left = now.duration_until(next_day);
    if left < jiff::SignedDuration::from_secs(60) {
        let wait = left.unsigned_abs() + Duration::from_secs(1);
        tokio::time::sleep(wait).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_on_and_rems_currency_follow_each_clinics_own_calendar() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();
    // Three clinics open on Mondays only, 25 hours of time zones apart at the extremes.
    let monday_only = |name: &str, zone: &str| {
        clinic_with(name, |c| {
            c.time_zone = zone.into();
            c.weekly_hours = Some(hours_on(&[1]));
            c.modalities = vec![IV, INTEGRATION];
            c.rems_certification = None;
        })
    };
    create(&mut ops, monday_only("Kiritimati", "Pacific/Kiritimati")).await;
    create(&mut ops, monday_only("Pago Pago", "Pacific/Pago_Pago")).await;
    let mut miami = monday_only("Miami", "America/New_York");
    miami.date_overrides = vec![
        pb::DateOverride {
            date: day(2026, 11, 30),
            closed: true,
            intervals: vec![],
            reason: "Staff training".into(),
        },
        pb::DateOverride {
            date: day(2026, 11, 28),
            closed: false,
            intervals: vec![range((10, 0), (14, 0))],
            reason: "Saturday clinic".into(),
        },
    ];
    create(&mut ops, miami).await;

    let open_on = |d| pb::SearchClinicsRequest {
        open_on: d,
        ..Default::default()
    };
    let cases: [(&str, Option<common::Date>, &[&str]); 5] = [
        (
            "a Monday, in every clinic's own calendar",
            day(2026, 11, 23),
            &["Kiritimati", "Miami", "Pago Pago"],
        ),
        ("the Sunday before", day(2026, 11, 22), &[]),
        ("the Tuesday after", day(2026, 11, 24), &[]),
        (
            "a Monday Miami closes by override",
            day(2026, 11, 30),
            &["Kiritimati", "Pago Pago"],
        ),
        (
            "a Saturday Miami opens by override",
            day(2026, 11, 28),
            &["Miami"],
        ),
    ];
    for (case, date, expected) in cases {
        assert_eq!(
            names(found(&mut ops, open_on(date)).await),
            *expected,
            "{case}"
        );
    }

    // "Current" is judged on the clinic's own local date. Pago Pago (UTC-11) is always a day or
    // two behind Kiritimati (UTC+14): a certification valid through Pago Pago's today is current
    // there and already expired in Kiritimati.
    not_at_midnight_in("Pacific/Pago_Pago").await;
    let last_day = today_in("Pacific/Pago_Pago");
    let spravato = |name: &str, zone: &str, modalities: Vec<i32>| {
        clinic_with(name, |c| {
            c.time_zone = zone.into();
            c.modalities = modalities;
            c.rems_certification = Some(rems(last_day));
        })
    };
    create(
        &mut ops,
        spravato(
            "Pago Pago Spravato",
            "Pacific/Pago_Pago",
            vec![IV, ESKETAMINE],
        ),
    )
    .await;
    let expired = ops
        .create_clinic(pb::CreateClinicRequest {
            request_id: request_id(),
            clinic: Some(spravato(
                "Kiritimati Spravato",
                "Pacific/Kiritimati",
                vec![IV, ESKETAMINE],
            )),
        })
        .await;
    assert_invalid(
        expired,
        "clinic.rems_certification.expires_on",
        "esketamine with a certification expired locally",
    );
    create(
        &mut ops,
        spravato("Kiritimati lapsed", "Pacific/Kiritimati", vec![IV]),
    )
    .await;

    let rems_certified = |certified| pb::SearchClinicsRequest {
        rems_certified: Some(certified),
        ..Default::default()
    };
    assert_eq!(
        found(&mut ops, rems_certified(true)).await,
        ["Pago Pago Spravato"]
    );
    assert_eq!(
        names(found(&mut ops, rems_certified(false)).await),
        ["Kiritimati", "Kiritimati lapsed", "Miami", "Pago Pago"]
    );
    let esketamine = pb::SearchClinicsRequest {
        modality: ESKETAMINE,
        ..Default::default()
    };
    assert_eq!(found(&mut ops, esketamine).await, ["Pago Pago Spravato"]);

    directory.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_stable_while_clinics_change() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();
    let mut by_name = HashMap::new();
    for km in 1..=12 {
        let name = format!("C{km:02}");
        let clinic = create(
            &mut ops,
            clinic_at(&name, &[("main", north_of(MIAMI, f64::from(km)))]),
        )
        .await;
        by_name.insert(name, clinic);
    }
    let mut request = pb::SearchClinicsRequest {
        page_size: 4,
        near: at(MIAMI),
        radius_km: 100.0,
        ..Default::default()
    };
    let mut walked: Vec<(String, f64)> = Vec::new();
    let mut page = async |client: &mut Client, request: &pb::SearchClinicsRequest| {
        let page = client
            .search_clinics(request.clone())
            .await
            .expect("a page")
            .into_inner();
        for result in page.results {
            let name = result.clinic.expect("a clinic").display_name;
            walked.push((name, result.distance_km.expect("a distance")));
        }
        page.next_page_token
    };

    request.page_token = page(&mut ops, &request).await;
    // Between pages: a clinic before the cursor and one after it join, a clinic not yet seen is
    // suspended, one not yet seen is renamed where it is, one already seen changes its name.
    create(
        &mut ops,
        clinic_at("New near", &[("main", north_of(MIAMI, 0.5))]),
    )
    .await;
    create(
        &mut ops,
        clinic_at("New far", &[("main", north_of(MIAMI, 20.0))]),
    )
    .await;
    suspend(&mut ops, &by_name["C07"])
        .await
        .expect("suspend C07");
    let mut renamed = by_name["C09"].clone();
    renamed.display_name = "C09 renamed".into();
    update(&mut ops, renamed).await.expect("rename C09");
    let mut seen = by_name["C02"].clone();
    seen.display_name = "C02 renamed".into();
    update(&mut ops, seen).await.expect("rename C02");

    request.page_token = page(&mut ops, &request).await;
    create(
        &mut ops,
        clinic_at("New middle", &[("main", north_of(MIAMI, 5.5))]),
    )
    .await;
    suspend(&mut ops, &by_name["C01"])
        .await
        .expect("suspend C01");
    while !request.page_token.is_empty() {
        request.page_token = page(&mut ops, &request).await;
    }

    let order: Vec<&str> = walked.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        order,
        [
            "C01",
            "C02",
            "C03",
            "C04",
            "C05",
            "C06",
            "C08",
            "C09 renamed",
            "C10",
            "C11",
            "C12",
            "New far",
        ],
        "each clinic appears once, in distance order; nothing before the cursor comes back"
    );
    assert!(walked.windows(2).all(|w| w[0].1 <= w[1].1), "{walked:?}");

    // Listing by id while clinics are added: none twice, none of the first ones missing.
    let before: HashSet<String> = list_all(&mut ops, pb::ClinicStatus::Unspecified)
        .await
        .into_iter()
        .map(|c| c.clinic_id)
        .collect();
    let mut list = pb::ListClinicsRequest {
        page_size: 5,
        ..Default::default()
    };
    let mut listed = Vec::new();
    loop {
        let page = ops
            .list_clinics(list.clone())
            .await
            .expect("a page")
            .into_inner();
        listed.extend(page.clinics.into_iter().map(|c| c.clinic_id));
        create(
            &mut ops,
            clinic(&format!("Joined while listing {}", listed.len())),
        )
        .await;
        if page.next_page_token.is_empty() {
            break;
        }
        list.page_token = page.next_page_token;
    }
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "a clinic was listed twice");
    assert!(
        before.iter().all(|id| unique.contains(id)),
        "a clinic was skipped"
    );

    directory.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Authorization: every RPC × every kind of caller, from one table.
// ---------------------------------------------------------------------------------------------

/// Each call, on a fresh scene: `this` clinic (suspended for ReactivateClinic), a provider
/// serving it, and a provider shared with `other` clinic.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    CreateClinic,
    GetClinic,
    ListClinics,
    UpdateClinic,
    SuspendClinic,
    ReactivateClinic,
    UpsertChair,
    RemoveChair,
    CreateProvider,
    CreateProviderAlsoServingOther,
    GetProvider,
    ListProviders,
    UpdateProvider,
    UpdateProviderMovingToOther,
    UpdateSharedProvider,
    RemoveProvider,
    RemoveSharedProvider,
    SearchClinics,
}

/// The callers, in the order of the table's columns.
const CALLERS: [&str; 6] = [
    "no token",
    "partner of this clinic",
    "partner of another clinic",
    "integrator",
    "ops",
    "forged ops token",
];

const UNAUTH: Code = Code::Unauthenticated;
const DENIED: Code = Code::PermissionDenied;
const OK: Code = Code::Ok;
const READ: [Code; 6] = [UNAUTH, OK, OK, OK, OK, UNAUTH];
const OPS_ONLY: [Code; 6] = [UNAUTH, DENIED, DENIED, DENIED, OK, UNAUTH];
const OPS_AND_PARTNER_IN_SCOPE: [Code; 6] = [UNAUTH, OK, DENIED, DENIED, OK, UNAUTH];

const MATRIX: [(Call, [Code; 6]); 18] = [
    (Call::CreateClinic, OPS_ONLY),
    (Call::GetClinic, READ),
    (Call::ListClinics, READ),
    (Call::UpdateClinic, OPS_AND_PARTNER_IN_SCOPE),
    (Call::SuspendClinic, OPS_ONLY),
    (Call::ReactivateClinic, OPS_ONLY),
    (Call::UpsertChair, OPS_AND_PARTNER_IN_SCOPE),
    (Call::RemoveChair, OPS_AND_PARTNER_IN_SCOPE),
    (Call::CreateProvider, OPS_AND_PARTNER_IN_SCOPE),
    // A partner may act on a provider only when every clinic it serves, before and after, is its own.
    (Call::CreateProviderAlsoServingOther, OPS_ONLY),
    (Call::GetProvider, READ),
    (Call::ListProviders, READ),
    (Call::UpdateProvider, OPS_AND_PARTNER_IN_SCOPE),
    (Call::UpdateProviderMovingToOther, OPS_ONLY),
    (Call::UpdateSharedProvider, OPS_ONLY),
    (Call::RemoveProvider, OPS_AND_PARTNER_IN_SCOPE),
    (Call::RemoveSharedProvider, OPS_ONLY),
    (Call::SearchClinics, READ),
];

struct Scene {
    this: pb::Clinic,
    other: pb::Clinic,
    provider: pb::Provider,
    shared: pb::Provider,
}

async fn scene(ops: &mut Client, other: &pb::Clinic, call: Call) -> Scene {
    let mut this = create(ops, clinic("This clinic")).await;
    if call == Call::ReactivateClinic {
        this = suspend(ops, &this).await.expect("suspend");
    }
    let serving_this = create_provider(ops, provider(&[&this.clinic_id])).await;
    let shared = create_provider(ops, provider(&[&this.clinic_id, &other.clinic_id])).await;
    Scene {
        this,
        other: other.clone(),
        provider: serving_this,
        shared,
    }
}

fn update_provider_request(
    provider: &pb::Provider,
    clinic_ids: &[&str],
) -> pb::UpdateProviderRequest {
    let mut changed = provider.clone();
    changed.credentials.push("DABPN".into());
    changed.clinic_ids = clinic_ids.iter().map(|id| (*id).to_owned()).collect();
    pb::UpdateProviderRequest {
        request_id: request_id(),
        provider: Some(changed),
        expected_version: provider.version,
    }
}

async fn call(client: &mut Client, call: Call, scene: &Scene) -> Code {
    let (this, other) = (&scene.this.clinic_id, &scene.other.clinic_id);
    let remove_provider = |provider: &pb::Provider| pb::RemoveProviderRequest {
        request_id: request_id(),
        provider_id: provider.provider_id.clone(),
        expected_version: provider.version,
    };
    match call {
        Call::CreateClinic => {
            let request = pb::CreateClinicRequest {
                request_id: request_id(),
                clinic: Some(clinic("New clinic")),
            };
            code_of(&client.create_clinic(request).await)
        }
        Call::GetClinic => code_of(
            &client
                .get_clinic(pb::GetClinicRequest {
                    clinic_id: this.clone(),
                })
                .await,
        ),
        Call::ListClinics => code_of(&client.list_clinics(pb::ListClinicsRequest::default()).await),
        Call::UpdateClinic => {
            let mut changed = scene.this.clone();
            changed.display_name = "This clinic, renamed".into();
            code_of(&update(client, changed).await)
        }
        Call::SuspendClinic => code_of(&suspend(client, &scene.this).await),
        Call::ReactivateClinic => code_of(&reactivate(client, &scene.this).await),
        Call::UpsertChair => {
            let request = pb::UpsertChairRequest {
                request_id: request_id(),
                clinic_id: this.clone(),
                expected_version: scene.this.version,
                chair: Some(pb::Chair {
                    location_id: "main".into(),
                    display_name: "Spravato room".into(),
                    modalities: vec![ESKETAMINE],
                    capacity: 2,
                    ..Default::default()
                }),
            };
            code_of(&client.upsert_chair(request).await)
        }
        Call::RemoveChair => {
            let request = pb::RemoveChairRequest {
                request_id: request_id(),
                clinic_id: this.clone(),
                chair_id: scene.this.chairs[0].chair_id.clone(),
                expected_version: scene.this.version,
            };
            code_of(&client.remove_chair(request).await)
        }
        Call::CreateProvider | Call::CreateProviderAlsoServingOther => {
            let clinics: &[&str] = if call == Call::CreateProvider {
                &[this]
            } else {
                &[this, other]
            };
            let request = pb::CreateProviderRequest {
                request_id: request_id(),
                provider: Some(provider(clinics)),
            };
            code_of(&client.create_provider(request).await)
        }
        Call::GetProvider => {
            let request = pb::GetProviderRequest {
                provider_id: scene.provider.provider_id.clone(),
            };
            code_of(&client.get_provider(request).await)
        }
        Call::ListProviders => {
            let request = pb::ListProvidersRequest {
                clinic_id: this.clone(),
                ..Default::default()
            };
            code_of(&client.list_providers(request).await)
        }
        Call::UpdateProvider => code_of(
            &client
                .update_provider(update_provider_request(&scene.provider, &[this]))
                .await,
        ),
        Call::UpdateProviderMovingToOther => code_of(
            &client
                .update_provider(update_provider_request(&scene.provider, &[other]))
                .await,
        ),
        Call::UpdateSharedProvider => code_of(
            &client
                .update_provider(update_provider_request(&scene.shared, &[this]))
                .await,
        ),
        Call::RemoveProvider => code_of(
            &client
                .remove_provider(remove_provider(&scene.provider))
                .await,
        ),
        Call::RemoveSharedProvider => {
            code_of(&client.remove_provider(remove_provider(&scene.shared)).await)
        }
        Call::SearchClinics => code_of(
            &client
                .search_clinics(pb::SearchClinicsRequest::default())
                .await,
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_of_every_rpc_and_caller() {
    let directory = Directory::start().await;
    let mut ops = directory.ops();
    let other = create(&mut ops, clinic("Another partner's clinic")).await;
    let mut mismatches = Vec::new();
    for (rpc, expected) in MATRIX {
        for (column, caller) in CALLERS.iter().enumerate() {
            let scene = scene(&mut ops, &other, rpc).await;
            let who = match column {
                0 => Who::Nobody,
                1 => Who::Partner(vec![scene.this.clinic_id.clone()]),
                2 => Who::Partner(vec![other.clinic_id.clone()]),
                3 => Who::Integrator,
                4 => Who::Ops,
                _ => Who::Forger,
            };
            let got = call(&mut directory.client(&who), rpc, &scene).await;
            if got != expected[column] {
                mismatches.push(format!(
                    "{rpc:?} by {caller}: expected {:?}, got {got:?}",
                    expected[column]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "authorization mismatches:\n{}",
        mismatches.join("\n")
    );
    directory.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Events: the read model appointments will keep, rebuilt from the DIRECTORY stream alone.
// ---------------------------------------------------------------------------------------------

/// Clinics and providers as a consumer of the directory's events holds them.
#[derive(Debug, Default)]
struct ReadModel {
    clinics: BTreeMap<String, pb::Clinic>,
    providers: BTreeMap<String, pb::Provider>,
    /// The last version seen of each aggregate.
    versions: HashMap<String, u64>,
}

impl ReadModel {
    fn apply(&mut self, subject: &str, payload: &[u8]) {
        let decoded =
            match subject.strip_prefix("clinicnet.directory.") {
                Some("clinic.registered") => ev::ClinicRegistered::decode(payload)
                    .map(|e| (e.metadata, e.clinic, e.providers)),
                Some("clinic.updated") => {
                    ev::ClinicUpdated::decode(payload).map(|e| (e.metadata, e.clinic, e.providers))
                }
                Some("clinic.suspended") => ev::ClinicSuspended::decode(payload)
                    .map(|e| (e.metadata, e.clinic, e.providers)),
                Some("clinic.reactivated") => ev::ClinicReactivated::decode(payload)
                    .map(|e| (e.metadata, e.clinic, e.providers)),
                Some("clinic.chair_changed") => ev::ChairChanged::decode(payload).map(|e| {
                    let clinic = e.clinic.as_ref().expect("the clinic");
                    assert!(
                        clinic.chairs.contains(e.chair.as_ref().expect("the chair")),
                        "the chair is the clinic's"
                    );
                    (e.metadata, e.clinic, e.providers)
                }),
                Some("provider.changed") => ev::ProviderChanged::decode(payload)
                    .map(|e| (e.metadata, None, e.provider.into_iter().collect())),
                _ => panic!("unexpected subject {subject}"),
            };
        let (metadata, clinic, providers) =
            decoded.unwrap_or_else(|error| panic!("decode {subject}: {error}"));
        let metadata = metadata.expect("event metadata");
        assert_eq!(metadata.producer, "directory");
        let last = self
            .versions
            .entry(metadata.aggregate_id.clone())
            .or_default();
        assert_eq!(
            metadata.aggregate_version,
            *last + 1,
            "{subject}: each aggregate's versions arrive in order, one by one"
        );
        *last = metadata.aggregate_version;
        match clinic {
            Some(clinic) => {
                assert_eq!(
                    (
                        metadata.aggregate_type.as_str(),
                        metadata.aggregate_id.as_str()
                    ),
                    ("clinic", clinic.clinic_id.as_str())
                );
                assert_eq!(metadata.aggregate_version, clinic.version);
                self.clinics.insert(clinic.clinic_id.clone(), clinic);
            }
            None => {
                let provider = providers.first().expect("the provider");
                assert_eq!(
                    (
                        metadata.aggregate_type.as_str(),
                        metadata.aggregate_id.as_str()
                    ),
                    ("provider", provider.provider_id.as_str())
                );
                assert_eq!(metadata.aggregate_version, provider.version);
            }
        }
        // Each provider copy has its own version: keep the newer.
        for provider in providers {
            let held = self
                .providers
                .get(&provider.provider_id)
                .map_or(0, |p| p.version);
            if provider.version > held {
                self.providers
                    .insert(provider.provider_id.clone(), provider);
            }
        }
    }

    /// The providers serving a clinic, in id order.
    fn serving(&self, clinic_id: &str) -> Vec<pb::Provider> {
        self.providers
            .values()
            .filter(|p| p.clinic_ids.iter().any(|id| id == clinic_id))
            .cloned()
            .collect()
    }
}

/// Counts the changes a test makes: each publishes exactly one event.
fn changed<T>(changes: &mut usize, result: Result<T, Status>) -> T {
    *changes += 1;
    result.expect("a change")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_rebuilt_from_the_events_alone_equals_the_directory() {
    // A NATS server of its own: the DIRECTORY stream then holds this test's events only.
    let nats = PrivateNats::start().await.expect("a private nats-server");
    let directory = Directory::start_on(&nats.url()).await;
    let mut ops = directory.ops();
    let mut changes = 0;

    let a = create(&mut ops, clinic("Ketamine Health Centers")).await;
    let b = create(
        &mut ops,
        clinic("Ketamine & Wellness Clinic of South Florida"),
    )
    .await;
    let c = create(&mut ops, clinic("Ketamine Expert Clinic")).await;
    changes += 3;
    // A retried call gets the first answer and publishes nothing more.
    let retried = pb::CreateClinicRequest {
        request_id: request_id(),
        clinic: Some(clinic("Retried")),
    };
    let first = changed(&mut changes, ops.create_clinic(retried.clone()).await).into_inner();
    let again = ops
        .create_clinic(retried)
        .await
        .expect("the retry")
        .into_inner();
    assert_eq!(first, again);

    // Changes of different clinics at the same time.
    let (mut x, mut y) = (ops.clone(), ops.clone());
    let renamed = pb::Clinic {
        display_name: "Ketamine Health Centers — Coral Gables".into(),
        ..a.clone()
    };
    let more_payers = pb::Clinic {
        in_network_payer_ids: vec!["florida-blue".into(), "aetna".into()],
        ..b.clone()
    };
    let (a_result, b_result) = tokio::join!(update(&mut x, renamed), update(&mut y, more_payers));
    let a = changed(&mut changes, a_result);
    let b = changed(&mut changes, b_result);

    // Chairs: added, changed, retired.
    let added = changed(
        &mut changes,
        ops.upsert_chair(pb::UpsertChairRequest {
            request_id: request_id(),
            clinic_id: a.clinic_id.clone(),
            expected_version: a.version,
            chair: Some(pb::Chair {
                location_id: "main".into(),
                display_name: "Spravato room".into(),
                modalities: vec![ESKETAMINE],
                capacity: 2,
                ..Default::default()
            }),
        })
        .await,
    )
    .into_inner();
    let mut chair = added.chair.expect("the chair");
    chair.capacity = 3;
    let resized = changed(
        &mut changes,
        ops.upsert_chair(pb::UpsertChairRequest {
            request_id: request_id(),
            clinic_id: a.clinic_id.clone(),
            expected_version: added.clinic_version,
            chair: Some(chair.clone()),
        })
        .await,
    )
    .into_inner();
    changed(
        &mut changes,
        ops.remove_chair(pb::RemoveChairRequest {
            request_id: request_id(),
            clinic_id: a.clinic_id.clone(),
            chair_id: chair.chair_id.clone(),
            expected_version: resized.clinic_version,
        })
        .await,
    );

    // Providers: registered, moved between clinics, deactivated.
    let p1 = create_provider(&mut ops, provider(&[&a.clinic_id])).await;
    let p2 = create_provider(&mut ops, provider(&[&a.clinic_id, &b.clinic_id])).await;
    changes += 2;
    changed(
        &mut changes,
        ops.update_provider(update_provider_request(&p2, &[&b.clinic_id, &c.clinic_id]))
            .await,
    );
    let removal = pb::RemoveProviderRequest {
        request_id: request_id(),
        provider_id: p1.provider_id.clone(),
        expected_version: p1.version,
    };
    changed(&mut changes, ops.remove_provider(removal).await);

    // Suspended and back; suspended for good; and a clinic change that carries its providers.
    let b = changed(&mut changes, suspend(&mut ops, &b).await);
    changed(&mut changes, reactivate(&mut ops, &b).await);
    changed(&mut changes, suspend(&mut ops, &c).await);
    let a = get(&mut ops, &a.clinic_id).await;
    let longer_hours = pb::Clinic {
        weekly_hours: Some(hours_on(&[1, 2, 3, 4, 5, 6])),
        ..a
    };
    changed(&mut changes, update(&mut ops, longer_hours).await);

    // Read the stream from its start, once the relay has published every change.
    let jetstream = jetstream::new(
        async_nats::connect(nats.url())
            .await
            .expect("connect to NATS"),
    );
    let mut stream = jetstream
        .get_stream("DIRECTORY")
        .await
        .expect("the DIRECTORY stream");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let published = stream.info().await.expect("stream info").state.messages;
        if published >= changes as u64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{published} of {changes} events published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut model = ReadModel::default();
    for _ in 0..changes {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream goes on")
            .expect("a message");
        let event_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string());
        model.apply(message.subject.as_str(), &message.payload);
        assert!(event_id.is_some_and(|id| !id.is_empty()), "Nats-Msg-Id set");
    }
    let extra = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
    assert!(extra.is_err(), "more events than changes: {extra:?}");

    // The directory as its API shows it equals the model built from the events alone.
    let clinics = list_all(&mut ops, pb::ClinicStatus::Unspecified).await;
    assert_eq!(clinics.len(), 4);
    assert_eq!(
        clinics
            .iter()
            .map(|c| c.clinic_id.clone())
            .collect::<Vec<_>>(),
        model.clinics.keys().cloned().collect::<Vec<_>>()
    );
    for clinic in &clinics {
        assert_eq!(
            model.clinics.get(&clinic.clinic_id),
            Some(clinic),
            "clinic {}",
            clinic.display_name
        );
        assert_eq!(&get(&mut ops, &clinic.clinic_id).await, clinic);
        let providers = providers_of(&mut ops, &clinic.clinic_id).await;
        assert_eq!(
            model.serving(&clinic.clinic_id),
            providers,
            "providers of {}",
            clinic.display_name
        );
    }
    let providers = providers_of(&mut ops, "").await;
    assert_eq!(providers.len(), 2);
    assert_eq!(
        model.providers.values().cloned().collect::<Vec<_>>(),
        providers
    );

    directory.stop().await;
}
