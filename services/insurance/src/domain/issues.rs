//! What is wrong with a claim before it goes to the payer: a code that needs a prior
//! authorization without a valid one (the payer would deny it with CARC 197), coverage not
//! verified, the timely filing limit, codes without a fee schedule entry. Also which of them stop
//! a submission.

use crate::domain::authorization::{Approval, covering};
use clinicnet_proto::insurance::v1::ClaimIssueKind;
use time::{Date, Duration};

/// Days before the timely filing limit from which a claim is flagged.
pub const TIMELY_FILING_WARNING_DAYS: i64 = 7;

/// What the latest eligibility check says about the service date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EligibilityFinding {
    /// No check was made.
    NotChecked,
    /// The payer answered: active.
    Active,
    /// The payer answered: not active.
    Inactive,
    /// The payer did not answer in time.
    Unknown,
}

/// A claim line as assessment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    /// Line number.
    pub line_number: i32,
    /// Procedure code.
    pub code: String,
    /// The fee schedule had no entry for it.
    pub missing_fee: bool,
}

/// Everything assessment looks at.
#[derive(Debug, Clone)]
pub struct ClaimFacts<'a> {
    /// The lines.
    pub lines: &'a [LineFacts],
    /// Date of service.
    pub service_date: Date,
    /// Codes the plan requires an authorization for.
    pub codes_requiring_authorization: &'a [String],
    /// The patient's approvals with this payer.
    pub approvals: &'a [Approval],
    /// An authorization number staff put on the claim (obtained outside clinicnet); empty when
    /// none. It stands for the codes no approval on file covers.
    pub stated_authorization_number: &'a str,
    /// Eligibility on the service date.
    pub eligibility: EligibilityFinding,
    /// The plan's timely filing limit in days.
    pub timely_filing_days: i32,
    /// Today's date.
    pub today: Date,
}

/// A problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Kind.
    pub kind: ClaimIssueKind,
    /// Line concerned; 0 for the whole claim.
    pub line_number: i32,
    /// Explanation without PHI.
    pub message: String,
}

/// The result of assessing a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Problems found.
    pub issues: Vec<Issue>,
    /// Authorization number to carry: the approval covering the first line that needs one.
    pub authorization_number: Option<String>,
}

/// The last day a claim for `service_date` may be filed.
pub fn filing_deadline(service_date: Date, timely_filing_days: i32) -> Date {
    service_date
        .checked_add(Duration::days(i64::from(timely_filing_days.max(0))))
        .unwrap_or(Date::MAX)
}

/// Whether the timely filing limit has passed (which always stops a submission).
pub fn filing_limit_passed(service_date: Date, timely_filing_days: i32, today: Date) -> bool {
    today > filing_deadline(service_date, timely_filing_days)
}

/// Assesses a claim.
pub fn assess(facts: &ClaimFacts<'_>) -> Assessment {
    let mut issues = Vec::new();
    let mut authorization_number = None;
    for line in facts.lines {
        if line.missing_fee {
            issues.push(Issue {
                kind: ClaimIssueKind::NoFeeScheduleEntry,
                line_number: line.line_number,
                message: format!(
                    "no fee schedule entry for {} on {}",
                    line.code, facts.service_date
                ),
            });
        }
        if !facts.codes_requiring_authorization.contains(&line.code) {
            continue;
        }
        match covering(facts.approvals, &line.code, facts.service_date) {
            Some(approval) => {
                authorization_number.get_or_insert_with(|| approval.number.clone());
            }
            None if !facts.stated_authorization_number.is_empty() => {}
            None => issues.push(Issue {
                kind: ClaimIssueKind::AuthorizationMissing,
                line_number: line.line_number,
                message: format!(
                    "{} needs a prior authorization valid on {} and none is on file (the payer would deny it with CARC 197)",
                    line.code, facts.service_date
                ),
            }),
        }
    }
    let coverage = match facts.eligibility {
        EligibilityFinding::NotChecked | EligibilityFinding::Active => None,
        EligibilityFinding::Inactive => Some("the payer answered that coverage was not active"),
        EligibilityFinding::Unknown => Some("the payer did not answer the eligibility check"),
    };
    if let Some(message) = coverage {
        issues.push(Issue {
            kind: ClaimIssueKind::CoverageNotVerified,
            line_number: 0,
            message: message.into(),
        });
    }
    let deadline = filing_deadline(facts.service_date, facts.timely_filing_days);
    if facts.today > deadline {
        issues.push(Issue {
            kind: ClaimIssueKind::TimelyFiling,
            line_number: 0,
            message: format!("the timely filing limit passed on {deadline}"),
        });
    } else if (deadline - facts.today).whole_days() <= TIMELY_FILING_WARNING_DAYS {
        issues.push(Issue {
            kind: ClaimIssueKind::TimelyFiling,
            line_number: 0,
            message: format!("the timely filing limit is {deadline}"),
        });
    }
    Assessment {
        issues,
        authorization_number,
    }
}

/// Whether an issue of `kind` stops a submission unless the caller submits despite issues (a
/// nearing filing limit is a warning; a passed one is checked separately and always stops).
pub fn blocks_submission(kind: ClaimIssueKind) -> bool {
    matches!(
        kind,
        ClaimIssueKind::AuthorizationMissing
            | ClaimIssueKind::CoverageNotVerified
            | ClaimIssueKind::NoFeeScheduleEntry
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn lines() -> Vec<LineFacts> {
        vec![
            LineFacts {
                line_number: 1,
                code: "G2083".into(),
                missing_fee: false,
            },
            LineFacts {
                line_number: 2,
                code: "J0013".into(),
                missing_fee: false,
            },
        ]
    }

    fn facts<'a>(
        lines: &'a [LineFacts],
        requiring: &'a [String],
        approvals: &'a [Approval],
    ) -> ClaimFacts<'a> {
        ClaimFacts {
            lines,
            service_date: date!(2026 - 03 - 10),
            codes_requiring_authorization: requiring,
            approvals,
            stated_authorization_number: "",
            eligibility: EligibilityFinding::NotChecked,
            timely_filing_days: 90,
            today: date!(2026 - 03 - 11),
        }
    }

    #[test]
    fn a_code_needing_authorization_without_one_is_flagged_on_its_line() {
        let lines = lines();
        let requiring = vec!["G2082".to_string(), "G2083".to_string()];
        let assessment = assess(&facts(&lines, &requiring, &[]));
        assert_eq!(assessment.authorization_number, None);
        assert_eq!(assessment.issues.len(), 1);
        assert_eq!(
            assessment.issues[0].kind,
            ClaimIssueKind::AuthorizationMissing
        );
        assert_eq!(assessment.issues[0].line_number, 1);
        assert!(blocks_submission(assessment.issues[0].kind));
    }

    #[test]
    fn a_covering_approval_supplies_the_authorization_number() {
        let lines = lines();
        let requiring = vec!["G2083".to_string()];
        let approvals = [Approval {
            number: "PA-77".into(),
            valid_from: date!(2026 - 03 - 01),
            valid_until: date!(2026 - 08 - 31),
            codes: vec!["G2082".into(), "G2083".into()],
        }];
        let assessment = assess(&facts(&lines, &requiring, &approvals));
        assert!(assessment.issues.is_empty(), "{:?}", assessment.issues);
        assert_eq!(assessment.authorization_number.as_deref(), Some("PA-77"));
    }

    #[test]
    fn an_expired_approval_does_not_cover_a_later_visit() {
        let lines = lines();
        let requiring = vec!["G2083".to_string()];
        let approvals = [Approval {
            number: "OLD".into(),
            valid_from: date!(2025 - 09 - 01),
            valid_until: date!(2026 - 03 - 09),
            codes: vec!["G2083".into()],
        }];
        let assessment = assess(&facts(&lines, &requiring, &approvals));
        assert_eq!(
            assessment.issues[0].kind,
            ClaimIssueKind::AuthorizationMissing
        );
    }

    #[test]
    fn a_number_staff_put_on_the_claim_stands_for_a_missing_approval() {
        let lines = lines();
        let requiring = vec!["G2083".to_string()];
        let mut facts = facts(&lines, &requiring, &[]);
        facts.stated_authorization_number = "PHONE-123";
        assert!(assess(&facts).issues.is_empty());
    }

    #[test]
    fn missing_fees_and_unverified_coverage_are_flagged() {
        let mut lines = lines();
        lines[1].missing_fee = true;
        let mut facts = facts(&lines, &[], &[]);
        facts.eligibility = EligibilityFinding::Unknown;
        let kinds: Vec<_> = assess(&facts).issues.into_iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ClaimIssueKind::NoFeeScheduleEntry,
                ClaimIssueKind::CoverageNotVerified
            ]
        );
        facts.eligibility = EligibilityFinding::Active;
        assert_eq!(assess(&facts).issues.len(), 1);
    }

    #[test]
    fn timely_filing_warns_within_seven_days_and_passes_after_the_deadline() {
        let lines = lines();
        let mut facts = facts(&lines, &[], &[]);
        facts.timely_filing_days = 10;
        facts.today = date!(2026 - 03 - 12);
        assert!(assess(&facts).issues.is_empty());
        facts.today = date!(2026 - 03 - 13);
        let warning = assess(&facts).issues;
        assert_eq!(warning[0].kind, ClaimIssueKind::TimelyFiling);
        assert!(!blocks_submission(warning[0].kind));
        assert!(!filing_limit_passed(
            facts.service_date,
            10,
            date!(2026 - 03 - 20)
        ));
        assert!(filing_limit_passed(
            facts.service_date,
            10,
            date!(2026 - 03 - 21)
        ));
    }
}
