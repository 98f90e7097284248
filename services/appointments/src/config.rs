//! The appointments service's own settings, besides the platform's: hold lengths and the sweep
//! that expires lapsed holds, visit lengths no clinic policy holds, and the clinical thresholds.
//! Every one is a flag with an environment variable, listed by `--help`.

use crate::domain::{gates::ClinicalRules, visit::VisitDurations};
use clap::Args;
use std::time::Duration;

/// Settings of the appointments service.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// How long a hold lasts when HoldSlot asks for no particular length, in seconds.
    #[arg(long, env = "HOLD_TTL_SECONDS", default_value_t = 300)]
    pub hold_ttl_seconds: u32,
    /// Shortest hold a caller may ask for, in seconds.
    #[arg(long, env = "HOLD_MIN_TTL_SECONDS", default_value_t = 60)]
    pub hold_min_ttl_seconds: u32,
    /// Longest hold a caller may ask for, in seconds.
    #[arg(long, env = "HOLD_MAX_TTL_SECONDS", default_value_t = 900)]
    pub hold_max_ttl_seconds: u32,
    /// How often lapsed holds are marked expired, in seconds (bookings expire them at once anyway).
    #[arg(long, env = "HOLD_SWEEP_INTERVAL_SECONDS", default_value_t = 30)]
    pub hold_sweep_interval_seconds: u64,
    /// Minutes to give an esketamine dose (blood pressure, devices 5 minutes apart) before the
    /// monitoring starts.
    #[arg(long, env = "ESKETAMINE_DOSING_MINUTES", default_value_t = 15)]
    pub esketamine_dosing_minutes: u16,
    /// Minutes of a supervised oral ketamine lozenge visit, dose and monitoring.
    #[arg(long, env = "LOZENGE_VISIT_MINUTES", default_value_t = 120)]
    pub lozenge_visit_minutes: u16,
    /// Failed adequate antidepressant trials in this episode that make depression
    /// treatment-resistant.
    #[arg(long, env = "TRD_MIN_FAILED_TRIALS", default_value_t = 2)]
    pub trd_min_failed_trials: u8,
    /// Weeks at the final dose a trial must have lasted to count toward TRD.
    #[arg(long, env = "TRD_MIN_TRIAL_WEEKS", default_value_t = 6)]
    pub trd_min_trial_weeks: u8,
    /// Age from which the first esketamine dose is limited.
    #[arg(long, env = "ESKETAMINE_REDUCED_START_AGE", default_value_t = 65)]
    pub esketamine_reduced_start_age: u8,
    /// Largest first esketamine dose from that age, in mg.
    #[arg(long, env = "ESKETAMINE_REDUCED_START_DOSE_MG", default_value_t = 28)]
    pub esketamine_reduced_start_dose_mg: u16,
}

impl Settings {
    /// Visit lengths for the domain.
    pub fn durations(&self) -> VisitDurations {
        VisitDurations {
            esketamine_dosing: time::Duration::minutes(i64::from(self.esketamine_dosing_minutes)),
            lozenge_visit: time::Duration::minutes(i64::from(self.lozenge_visit_minutes)),
        }
    }

    /// Clinical thresholds for the domain.
    pub fn clinical_rules(&self) -> ClinicalRules {
        ClinicalRules {
            min_failed_trials: usize::from(self.trd_min_failed_trials),
            min_trial_weeks: i32::from(self.trd_min_trial_weeks),
            reduced_start_age: i32::from(self.esketamine_reduced_start_age),
            reduced_start_max_dose_mg: i32::from(self.esketamine_reduced_start_dose_mg),
        }
    }

    /// How often the hold sweep runs.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.hold_sweep_interval_seconds.max(1))
    }
}
