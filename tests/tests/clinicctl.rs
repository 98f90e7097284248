//! clinicctl end to end: the real `clinicctl` binary against the four real services over gRPC,
//! each network on its own databases and its own NATS server (durable consumer names are fixed,
//! so two networks must not share one). Covers every availability import format (valid file, bad
//! row with its line number and nothing applied, FHIR statuses other than free, iCalendar
//! recurrence with an excluded date, times in other zones), one command of each group with its
//! JSON output parsed back, the exit codes, token minting and refusal, and the steps of
//! `make run`'s journey checked in the mail sink, the claim and the trace viewer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use platform::auth::Role;
use serde_json::Value;
use system_tests::{
    ServiceProcess, free_port,
    network::{NetworkOptions, SERVICES},
};
use tokio::process::{Child, Command};

const SECRET: &str = "clinicctl-system-test-secret";
const PAYER: &str = "suncoast-health";
/// The sync window of the import fixtures (their dates straddle the US DST change of 2026-03-08).
const WINDOW: [&str; 4] = ["--from", "2026-03-02", "--days", "28"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/clinicctl")
        .join(name)
}

fn clinicctl_path() -> PathBuf {
    ServiceProcess::binary_path("clinicctl").expect("the clinicctl binary")
}

/// The four-service network with clinicctl pointed at it and the long-running clinicctl
/// commands it started.
struct Network {
    net: system_tests::network::Network,
    config_home: tempfile::TempDir,
    children: Vec<Child>,
}

impl Network {
    /// Starts the network; notifications deliver email to `smtp_port` and every service exports
    /// traces to `otlp` when given.
    async fn start(smtp_port: Option<u16>, otlp: Option<&str>) -> Network {
        let mut env = Vec::new();
        let mut set = |service: &str, key: &str, value: String| {
            env.push((service.to_owned(), key.to_owned(), value));
        };
        if let Some(port) = smtp_port {
            set(
                "notifications",
                "SMTP_URL",
                format!("smtp://127.0.0.1:{port}"),
            );
            set("notifications", "SMTP_STARTTLS", "off".to_owned());
        }
        if let Some(otlp) = otlp {
            set("*", "OTEL_EXPORTER_OTLP_ENDPOINT", otlp.to_owned());
        }
        let options = NetworkOptions {
            env,
            ..NetworkOptions::default()
        };
        Network {
            net: system_tests::network::Network::start(options)
                .await
                .expect("a clinicnet network"),
            config_home: tempfile::tempdir().expect("a config home"),
            children: Vec::new(),
        }
    }

    /// A clinicctl command with this network's endpoints and `token`, isolated from any user
    /// configuration.
    fn command(&self, token: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new(clinicctl_path());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.config_home.path())
            .env("XDG_CONFIG_HOME", self.config_home.path())
            .env("CLINICCTL_TIME_ZONE", "America/New_York")
            .kill_on_drop(true);
        for name in SERVICES {
            command.env(
                format!("CLINICNET_{}_URL", name.to_ascii_uppercase()),
                self.net.endpoint(name),
            );
        }
        if let Some(token) = token {
            command.env("CLINICNET_TOKEN", token);
        }
        command
    }

    async fn run(&self, token: Option<&str>, args: &[&str]) -> Output {
        self.command(token, args)
            .output()
            .await
            .expect("run clinicctl")
    }

    /// Runs a command that must succeed and print one JSON document.
    async fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let output = self.run(Some(token), &all).await;
        assert!(
            output.status.success(),
            "clinicctl {args:?} failed ({:?}):\n{}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "clinicctl {args:?} printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Starts a long-running clinicctl (mail sink, integrator, trace viewer), killed on drop.
    fn spawn(&mut self, token: Option<&str>, args: &[&str], log: &Path) {
        let file = std::fs::File::create(log).expect("a log file");
        let child = self
            .command(token, args)
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("spawn clinicctl");
        self.children.push(child);
    }

    fn token(&self, role: Role, clinic_ids: &[&str], payer: Option<&str>) -> String {
        self.net.token(role, clinic_ids, payer)
    }

    fn ops(&self) -> String {
        self.net.ops_token()
    }

    async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        self.net.stop().await;
    }
}

/// Seeds the Miami network and returns (Ketamine Health Centers' id, the seed report).
async fn seed(network: &Network) -> (String, Value) {
    let report = network
        .json(&network.ops(), &["seed", "miami", "--days", "14"])
        .await;
    let items = report["items"].as_array().expect("seed items");
    assert!(
        report["notes"].as_array().is_some_and(|n| n.is_empty()),
        "a service was not ready: {report}"
    );
    let clinic = items
        .iter()
        .find(|i| i["kind"] == "clinic" && i["key"] == "ketamine-health-centers")
        .and_then(|i| i["id"].as_str())
        .expect("the seeded clinic")
        .to_owned();
    for kind in ["clinic", "provider", "payer", "plan", "availability"] {
        assert!(
            items.iter().any(|i| i["kind"] == kind),
            "nothing seeded of {kind}: {report}"
        );
    }
    assert!(
        items
            .iter()
            .filter(|i| i["kind"] == "availability")
            .all(|i| i["result"]
                .as_str()
                .is_some_and(|r| !r.starts_with("skipped"))),
        "availability not synced: {report}"
    );
    (clinic, report)
}

/// The clinic's slots in the fixtures' window: (external id, start, status) sorted.
async fn slots(network: &Network, clinic: &str) -> Vec<(String, String, String)> {
    let mut args = vec!["availability", "list", "--clinic", clinic];
    args.extend(WINDOW);
    let listed = network.json(&network.ops(), &args).await;
    let mut out: Vec<(String, String, String)> = listed["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| {
            (
                s["external_id"].as_str().unwrap_or_default().to_owned(),
                s["start_time"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn import(network: &Network, clinic: &str, file: &str, json: bool) -> Output {
    let path = fixture(file);
    let mut args = vec![
        "availability",
        "import",
        "--clinic",
        clinic,
        path.to_str().expect("utf-8 path"),
        "--yes",
    ];
    args.extend(WINDOW);
    if json {
        args.extend(["-o", "json"]);
    }
    network.run(Some(&network.ops()), &args).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_minting_and_refusal() {
    let config_home = tempfile::tempdir().unwrap();
    let run = |secret: Option<&str>, args: &[&str]| {
        let mut command = std::process::Command::new(clinicctl_path());
        command
            .args(args)
            .env_remove("JWT_HS256_SECRET")
            .env("XDG_CONFIG_HOME", config_home.path());
        if let Some(secret) = secret {
            command.env("JWT_HS256_SECRET", secret);
        }
        command.output().expect("run clinicctl")
    };
    let minted = run(
        Some(SECRET),
        &[
            "token",
            "mint",
            "--role",
            "partner-clinic",
            "--clinic",
            "c-1",
            "--clinic",
            "c-2",
        ],
    );
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_owned();
    let caller = platform::auth::Authenticator::from_config(&platform::config::AuthConfig {
        jwt_hs256_secret: Some(SECRET.parse().expect("a secret")),
        jwt_rs256_public_key_file: None,
    })
    .expect("an authenticator")
    .authenticate(Some(&format!("Bearer {token}")))
    .expect("the minted token is accepted with the development secret");
    assert_eq!(caller.role, Role::PartnerClinic);
    assert_eq!(caller.clinic_ids, vec!["c-1", "c-2"]);

    let json = run(
        Some(SECRET),
        &[
            "token",
            "mint",
            "--role",
            "integrator",
            "--payer",
            PAYER,
            "-o",
            "json",
        ],
    );
    let value: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        value["token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );

    let refused = run(None, &["token", "mint", "--role", "ops"]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "usage error without the secret"
    );
    assert!(
        text(&refused.stderr).contains("JWT_HS256_SECRET"),
        "{}",
        text(&refused.stderr)
    );
    assert!(refused.stdout.is_empty(), "nothing minted");
    let no_scope = run(Some(SECRET), &["token", "mint", "--role", "integrator"]);
    assert_eq!(no_scope.status.code(), Some(2));

    let help = run(None, &["--help"]);
    let help = text(&help.stdout);
    assert!(
        help.contains("Exit codes") && help.contains("3  not found"),
        "{help}"
    );
    let completions = run(None, &["completions", "bash"]);
    assert!(text(&completions.stdout).contains("clinicctl"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_one_command_of_each_group() {
    let network = Network::start(None, None).await;
    let (clinic, _) = seed(&network).await;
    let ops = network.ops();

    // CSV: local times in the clinic's zone across the DST change, an offset and a row in
    // another zone, a provider named by NPI.
    let valid = import(&network, &clinic, "valid.csv", true).await;
    assert!(valid.status.success(), "{}", text(&valid.stderr));
    let report: Value = serde_json::from_slice(&valid.stdout).expect("JSON report");
    assert_eq!(report["summary"]["added"], 4);
    assert_eq!(report["outcome"]["slots_added"], "4");
    let after_csv = slots(&network, &clinic).await;
    let starts: Vec<(&str, &str)> = after_csv
        .iter()
        .map(|(id, start, _)| (id.as_str(), start.as_str()))
        .collect();
    assert_eq!(
        starts,
        vec![
            ("csv-1", "2026-03-05T14:00:00Z"),
            ("csv-2", "2026-03-10T13:00:00Z"),
            ("csv-3", "2026-03-10T16:00:00Z"),
            ("csv-4", "2026-03-11T13:00:00Z"),
        ]
    );

    // A bad row: its line is named and nothing is applied.
    for bad in ["bad-row.csv", "bad-row.ics", "bad-row-fhir.json"] {
        let output = import(&network, &clinic, bad, false).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad}: {}",
            text(&output.stderr)
        );
        let line = match bad {
            "bad-row.csv" => ":4:",
            "bad-row.ics" => ":15:",
            _ => ":7:",
        };
        assert!(
            text(&output.stderr).contains(line),
            "{bad}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stderr).contains("nothing applied"));
        assert_eq!(
            slots(&network, &clinic).await,
            after_csv,
            "{bad} changed availability"
        );
    }

    // Without --yes and no terminal, nothing is applied either.
    let path = fixture("calendar.ics");
    let mut args = vec![
        "availability",
        "import",
        "--clinic",
        &clinic,
        path.to_str().unwrap(),
    ];
    args.extend(WINDOW);
    let unconfirmed = network.run(Some(&ops), &args).await;
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert_eq!(slots(&network, &clinic).await, after_csv);

    // iCalendar: weekly RRULE with COUNT, an EXDATE, and an event in America/Los_Angeles.
    let ics = import(&network, &clinic, "calendar.ics", true).await;
    assert!(ics.status.success(), "{}", text(&ics.stderr));
    let after_ics = slots(&network, &clinic).await;
    let starts: BTreeSet<(String, String)> = after_ics
        .iter()
        .map(|(id, s, _)| (id.clone(), s.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("ics-spravato/20260303T140000Z", "2026-03-03T14:00:00Z"),
        ("ics-spravato/20260310T130000Z", "2026-03-10T13:00:00Z"),
        ("ics-spravato/20260312T130000Z", "2026-03-12T13:00:00Z"),
        ("ics-spravato/20260317T130000Z", "2026-03-17T13:00:00Z"),
        ("ics-pacific-iv", "2026-03-12T13:00:00Z"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        starts, expected,
        "the excluded 2026-03-05 is absent, the CSV slots are gone"
    );

    // FHIR: only free Slots become availability; busy, busy-tentative, busy-unavailable and
    // entered-in-error are reported as not imported.
    let fhir = import(&network, &clinic, "slots-fhir.json", true).await;
    assert!(fhir.status.success(), "{}", text(&fhir.stderr));
    let report: Value = serde_json::from_slice(&fhir.stdout).expect("JSON report");
    let reasons: Vec<&str> = report["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter_map(|s| s["reason"].as_str())
        .collect();
    assert_eq!(reasons.len(), 4, "{report}");
    for status in [
        "busy:",
        "busy-tentative",
        "busy-unavailable",
        "entered-in-error",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(status)),
            "{status}: {reasons:?}"
        );
    }
    let after_fhir = slots(&network, &clinic).await;
    let ids: Vec<(&str, &str)> = after_fhir
        .iter()
        .map(|(id, s, _)| (id.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("fhir-free-1", "2026-03-19T13:00:00Z"),
            ("fhir-free-pacific", "2026-03-20T13:00:00Z"),
        ]
    );

    // One command of each group, JSON parsed back.
    let clinics = network.json(&ops, &["clinic", "list"]).await;
    assert_eq!(clinics["clinics"].as_array().map(Vec::len), Some(3));
    let providers = network
        .json(&ops, &["provider", "list", "--clinic", &clinic])
        .await;
    let provider = providers["providers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["npi"] == "1509382713"))
        .expect("the seeded psychiatrist");
    let provider_id = provider["provider_id"].as_str().unwrap().to_owned();
    let patient = network
        .json(
            &ops,
            &[
                "patient",
                "register",
                "--clinic",
                &clinic,
                "--given-name",
                "Ana",
                "--family-name",
                "Prueba",
                "--birth-date",
                "1979-02-11",
                "--locale",
                "es-us",
                "--email",
                "ana.prueba@example.com",
                "--email-consent",
            ],
        )
        .await;
    let patient_id = patient["patient"]["patient_id"]
        .as_str()
        .expect("patient id")
        .to_owned();
    assert_eq!(patient["patient"]["preferred_locale"], "LOCALE_ES_US");
    let intake = network
        .json(
            &ops,
            &[
                "patient",
                "intake",
                &patient_id,
                "--clinic",
                &clinic,
                "--provider",
                &provider_id,
                "--diagnosis",
                "F33.2",
                "--trial",
                "ssri:8",
                "--trial",
                "snri:12",
                "--baseline-phq9",
                "18",
                "--trd-attested",
            ],
        )
        .await;
    assert_eq!(
        intake["intake"]["failed_trials"].as_array().map(Vec::len),
        Some(2)
    );
    let offers = network
        .json(
            &ops,
            &[
                "availability",
                "find",
                "--modality",
                "esketamine",
                "--clinic",
                &clinic,
            ],
        )
        .await;
    let slot = offers["offers"][0]["slot"]["slot_id"]
        .as_str()
        .expect("a free esketamine slot")
        .to_owned();
    let booked = network
        .json(
            &ops,
            &[
                "appointment",
                "book",
                "--slot",
                &slot,
                "--patient",
                &patient_id,
                "--dose-mg",
                "56",
            ],
        )
        .await;
    let appointment = booked["appointment"]["appointment_id"]
        .as_str()
        .expect("booked")
        .to_owned();
    assert_eq!(booked["appointment"]["status"], "APPOINTMENT_STATUS_BOOKED");
    let got = network
        .json(&ops, &["appointment", "get", &appointment])
        .await;
    assert_eq!(got["appointment"]["planned_dose_mg"], 56);
    let plans = network.json(&ops, &["course", "plans"]).await;
    assert!(plans["plans"].is_array(), "{plans}");
    let outcomes = network
        .json(
            &ops,
            &["outcomes", "show", "--clinic", &clinic, "--days", "30"],
        )
        .await;
    assert!(outcomes.get("patients_counted").is_some(), "{outcomes}");
    let payers = network.json(&ops, &["payer", "list"]).await;
    assert!(
        payers["payers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["payer_id"] == PAYER))
    );
    let plan = network.json(&ops, &["plan", "get", "suncoast-ppo"]).await;
    assert_eq!(plan["plan"]["codes_requiring_authorization"][0], "G2082");
    let coverage = network
        .json(
            &ops,
            &[
                "coverage",
                "add",
                "--patient",
                &patient_id,
                "--payer",
                PAYER,
                "--plan",
                "suncoast-ppo",
                "--member-id",
                "SCH-TEST-1",
                "--from",
                "2026-01-01",
            ],
        )
        .await;
    let coverage_id = coverage["coverage"]["coverage_id"]
        .as_str()
        .expect("coverage")
        .to_owned();
    let check = network
        .json(
            &ops,
            &[
                "eligibility",
                "check",
                "--coverage",
                &coverage_id,
                "--date",
                "2026-12-01",
                "--code",
                "G2082",
            ],
        )
        .await;
    assert!(
        check["check"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("ELIGIBILITY_STATUS_")),
        "{check}"
    );
    let pas = network
        .json(&ops, &["pa", "list", "--patient", &patient_id])
        .await;
    assert!(pas.get("prior_authorizations").is_some(), "{pas}");
    let claims = network
        .json(&ops, &["claim", "list", "--clinic", &clinic])
        .await;
    assert!(claims["claims"].is_array(), "{claims}");
    let integrator = network.token(Role::Integrator, &[], Some(PAYER));
    let remittance = fixture("remittance-unknown-claim.json");
    let posted = network
        .json(
            &integrator,
            &["remit", "post", "--file", remittance.to_str().unwrap()],
        )
        .await;
    assert_eq!(
        posted[0]["outcome"], "REMITTANCE_OUTCOME_REJECTED",
        "{posted}"
    );
    assert_eq!(
        posted[0]["claims"][0]["status"],
        "CLAIM_POSTING_STATUS_UNKNOWN_CLAIM"
    );
    let work = network
        .json(&integrator, &["integrator", "work", "--payer", PAYER])
        .await;
    assert!(
        work.as_array().is_some_and(|w| !w.is_empty()),
        "eligibility work: {work}"
    );
    let notifications = network
        .json(&ops, &["notify", "list", "--patient", &patient_id])
        .await;
    assert!(notifications["notifications"].is_array(), "{notifications}");
    let lag = network.json(&ops, &["events", "lag"]).await;
    let services: BTreeSet<&str> = lag
        .as_array()
        .expect("one backlog per service")
        .iter()
        .filter_map(|b| b["service"].as_str())
        .collect();
    assert_eq!(services, SERVICES.into_iter().collect());

    // Exit codes: not found, permission, usage.
    let missing = network
        .run(
            Some(&ops),
            &["clinic", "get", "01a20000-0000-7000-8000-000000000000"],
        )
        .await;
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing.stderr));
    let other = network.token(
        Role::PartnerClinic,
        &["01a20000-0000-7000-8000-000000000001"],
        None,
    );
    let mut args = vec!["availability", "list", "--clinic", clinic.as_str()];
    args.extend(WINDOW);
    let denied = network.run(Some(&other), &args).await;
    assert_eq!(denied.status.code(), Some(4), "{}", text(&denied.stderr));
    let anonymous = network.run(None, &["clinic", "list"]).await;
    assert_eq!(anonymous.status.code(), Some(4));
    let bad_flag = network.run(Some(&ops), &["clinic", "list", "--nope"]).await;
    assert_eq!(bad_flag.status.code(), Some(2));
    let bad_field = network
        .run(
            Some(&ops),
            &[
                "appointment",
                "book",
                "--slot",
                &slot,
                "--patient",
                &patient_id,
                "--dose-mg",
                "57",
            ],
        )
        .await;
    assert!(
        matches!(bad_field.status.code(), Some(1) | Some(2)),
        "a refused booking is a usage (2) or rule (1) error: {}",
        text(&bad_field.stderr)
    );
    network.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_make_run_journey() {
    let work = tempfile::tempdir().unwrap();
    let mail_dir = work.path().join("mail");
    let traces_dir = work.path().join("traces");
    let smtp = free_port();
    let otlp_port = free_port();
    let otlp = format!("http://127.0.0.1:{otlp_port}");
    let mut network = Network::start(Some(smtp), Some(&otlp)).await;
    network.spawn(
        None,
        &[
            "mail-sink",
            "--listen",
            &format!("127.0.0.1:{smtp}"),
            "--dir",
            mail_dir.to_str().unwrap(),
        ],
        &work.path().join("mail-sink.log"),
    );
    network.spawn(
        None,
        &[
            "traces",
            "--listen",
            &format!("127.0.0.1:{otlp_port}"),
            "--dir",
            traces_dir.to_str().unwrap(),
            "--idle-ms",
            "1000",
        ],
        &work.path().join("traces.log"),
    );
    let (clinic, _) = seed(&network).await;
    let integrator = network.token(Role::Integrator, &[], Some(PAYER));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/clinicctl/seed/miami/integrator-rules.toml");
    network.spawn(
        Some(&integrator),
        &[
            "integrator",
            "serve",
            "--payer",
            PAYER,
            "--rules",
            rules.to_str().unwrap(),
        ],
        &work.path().join("integrator.log"),
    );
    let mut journey_command = network.command(
        Some(&network.ops()),
        &[
            "journey",
            "--mail-dir",
            mail_dir.to_str().unwrap(),
            "--wait-seconds",
            "60",
            "-o",
            "json",
        ],
    );
    journey_command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp);
    let output = journey_command.output().await.expect("run the journey");
    let integrator_log =
        std::fs::read_to_string(work.path().join("integrator.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "journey failed:\n{}\n{}\nintegrator:\n{integrator_log}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let journey: Value = serde_json::from_slice(&output.stdout).expect("journey JSON");
    let steps = journey["steps"].as_array().expect("steps");
    assert!(
        steps.iter().all(|s| s["outcome"] == "done"),
        "every step done: {journey:#}"
    );
    assert_eq!(journey["ids"]["clinic"], clinic.as_str());

    // The claim was paid by the integrator's rules: 80 % allowed, 20 % coinsurance.
    let claim_id = journey["ids"]["claim"].as_str().expect("a claim");
    let claim = network
        .json(&network.ops(), &["claim", "get", claim_id])
        .await;
    assert_eq!(claim["claim"]["status"], "CLAIM_STATUS_PAID", "{claim:#}");
    let charge: i64 = claim["claim"]["total_charge"]["amount_cents"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let paid: i64 = claim["claim"]["paid_amount"]["amount_cents"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let owed: i64 = claim["claim"]["patient_responsibility"]["amount_cents"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let allowed = charge * 80 / 100;
    assert_eq!(
        (paid, owed),
        (allowed - allowed * 20 / 100, allowed * 20 / 100)
    );
    assert!(
        !claim["claim"]["authorization_number"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );

    // The mail sink holds the patient's email, in Spanish, naming no drug or diagnosis.
    let mails: Vec<String> = std::fs::read_dir(&mail_dir)
        .expect("the mail directory")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(journey["emails_delivered"].as_u64().unwrap_or(0) >= 1);
    assert!(
        mails
            .iter()
            .any(|m| m.contains("X-Envelope-To: <maria.demo@example.com>")),
        "no mail to the patient among {} messages",
        mails.len()
    );
    for mail in &mails {
        let lower = mail.to_ascii_lowercase();
        assert!(
            !lower.contains("esketamine") && !lower.contains("f33.2"),
            "PHI in a message:\n{mail}"
        );
    }

    // The trace viewer shows the journey's trace across the services, without attribute values.
    let trace_id = journey["trace_id"].as_str().expect("trace id").to_owned();
    let trace_file = traces_dir.join(format!("{trace_id}.txt"));
    let mut waterfall = String::new();
    for _ in 0..40 {
        waterfall = std::fs::read_to_string(&trace_file).unwrap_or_default();
        if SERVICES.iter().all(|s| waterfall.contains(s)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(waterfall.contains("clinicctl journey"), "{waterfall}");
    for service in SERVICES {
        assert!(
            waterfall.contains(service),
            "{service} missing from the trace:\n{waterfall}"
        );
    }
    assert!(
        !waterfall.contains("maria"),
        "attribute values in the waterfall"
    );
    network.stop().await;
}
