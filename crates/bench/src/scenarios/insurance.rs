//! What the insurance scenarios share: ops and integrator clients of the real `insurance` binary,
//! one payer with one plan whose fee schedule prices psychotherapy, and primary coverage for
//! patients once insurance has heard of them.

use clinicnet_proto::{
    common::v1::{Date, Money},
    insurance::v1::{
        AddCoverageRequest, Coverage, CoveragePriority, FeeScheduleEntry, Payer, Plan,
        SubscriberRelationship, UpsertPayerRequest, UpsertPlanRequest,
        insurance_service_client::InsuranceServiceClient,
        integrator_service_client::IntegratorServiceClient,
    },
};
use futures::{StreamExt as _, TryStreamExt as _};
use platform::auth::BearerToken;
use std::time::{Duration, Instant};
use tonic::{codegen::InterceptedService, transport::Channel};
use uuid::Uuid;

/// The payer every benchmark patient is insured with.
pub const PAYER: &str = "bench-payer";
const PLAN: &str = "bench-plan";
/// What the plan pays for a 60-minute psychotherapy session (90837), in cents.
pub const SESSION_CENTS: i64 = 18_000;

/// An ops client of the insurance service.
pub type Insurance = InsuranceServiceClient<InterceptedService<Channel, BearerToken>>;
/// The payer's integrator client.
pub type Integrator = IntegratorServiceClient<InterceptedService<Channel, BearerToken>>;

/// An ops client on `channel` with `token`.
pub fn ops(channel: Channel, token: BearerToken) -> Insurance {
    InsuranceServiceClient::with_interceptor(channel, token)
}

/// [`PAYER`]'s integrator on `channel`, with an integrator token of that payer.
pub fn integrator(channel: Channel, token: BearerToken) -> Integrator {
    IntegratorServiceClient::with_interceptor(channel, token)
}

/// US dollars in cents.
pub fn usd(amount_cents: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_cents,
    }
}

fn since_2025() -> Option<Date> {
    Some(Date {
        year: 2025,
        month: 1,
        day: 1,
    })
}

/// Creates the payer and its plan (no prior authorization needed for psychotherapy).
pub async fn payer_and_plan(insurance: &mut Insurance) -> anyhow::Result<()> {
    insurance
        .upsert_payer(UpsertPayerRequest {
            request_id: Uuid::now_v7().to_string(),
            payer: Some(Payer {
                payer_id: PAYER.into(),
                display_name: "Bench payer".into(),
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await?;
    let fee_schedule = vec![FeeScheduleEntry {
        procedure_code: "90837".into(),
        unit_charge: Some(usd(SESSION_CENTS)),
        effective_from: since_2025(),
        effective_until: None,
    }];
    insurance
        .upsert_plan(UpsertPlanRequest {
            request_id: Uuid::now_v7().to_string(),
            plan: Some(Plan {
                plan_id: PLAN.into(),
                payer_id: PAYER.into(),
                display_name: "Bench plan".into(),
                fee_schedule,
                authorization_validity_days: 180,
                timely_filing_days: 365,
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await?;
    Ok(())
}

/// Adds primary coverage under the plan for each patient, waiting (up to a minute) for
/// insurance to have consumed their registration.
pub async fn cover(insurance: &Insurance, patient_ids: &[String]) -> anyhow::Result<()> {
    futures::stream::iter(patient_ids)
        .map(|patient_id| {
            let mut insurance = insurance.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let added = insurance
                        .add_coverage(AddCoverageRequest {
                            request_id: Uuid::now_v7().to_string(),
                            coverage: Some(Coverage {
                                patient_id: patient_id.clone(),
                                payer_id: PAYER.into(),
                                plan_id: PLAN.into(),
                                member_id: format!(
                                    "M{}",
                                    &Uuid::new_v4().simple().to_string()[..9]
                                ),
                                group_number: "GRP-1".into(),
                                relationship: SubscriberRelationship::Self_ as i32,
                                effective_from: since_2025(),
                                priority: CoveragePriority::Primary as i32,
                                ..Default::default()
                            }),
                        })
                        .await;
                    match added {
                        Ok(_) => return anyhow::Ok(()),
                        Err(status)
                            if status.code() == tonic::Code::NotFound
                                && Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(status) => return Err(status.into()),
                    }
                }
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
