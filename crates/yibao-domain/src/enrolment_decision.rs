//! What storing a person does to their enrolment (参保登记) for a fee year, decided from what is
//! stored: enrol, record a refusal, or leave things as they are. Storage reads the person's
//! enrolments of that year (in every region) under its write transaction, asks
//! [`decide_enrolment`], and writes the answer; the one-enrolment-per-person-and-year rule is
//! also a database constraint (`enrolment_claims`), so a race still cannot enrol twice.

use chrono::NaiveDate;

use crate::enrolment::EnrolmentRefusal;
use crate::fee::FeeYear;
use crate::lifecycle::EnrolmentStatus;
use crate::region::RegionCode;

/// What to do about a person's enrolment while storing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentRequest {
    /// Enrol for the fee year, covered from the date given (see `covered_from`).
    Enrol {
        fee_year: FeeYear,
        covered_from: NaiveDate,
    },
    /// Record that the person may not enrol, and why.
    Refuse {
        fee_year: FeeYear,
        refusal: EnrolmentRefusal,
    },
}

impl EnrolmentRequest {
    pub fn fee_year(&self) -> FeeYear {
        match self {
            EnrolmentRequest::Enrol { fee_year, .. }
            | EnrolmentRequest::Refuse { fee_year, .. } => *fee_year,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentOutcome {
    /// Newly enrolled (or a refusal turned into an enrolment).
    Enrolled,
    /// Enrolled already in this region and fee year: nothing changed.
    AlreadyEnrolled,
    /// Refused now, with the reason (recorded, so unpaid lists can show it).
    Refused(EnrolmentRefusal),
    /// Enrolled already and assessed: a later refusal reason is not applied until the payable is
    /// dealt with (re-assessment or refund).
    KeptBecauseAssessed(EnrolmentRefusal),
    NotAttempted,
}

/// A person's enrolment of the fee year as stored, in some region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnrolment {
    pub region: RegionCode,
    pub status: EnrolmentStatus,
    pub refusal_code: Option<String>,
}

/// An enrolment row to write (insert, or replace the region's row of that year).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentWrite {
    pub fee_year: FeeYear,
    pub status: EnrolmentStatus,
    pub refusal_code: Option<String>,
    pub refusal_message: Option<String>,
    pub covered_from: Option<NaiveDate>,
}

/// Decides a request for a person of `region`, given their enrolments of the request's fee year
/// in every region (`stored`) and whether they already have a current payable that year
/// (`assessed`):
///
/// - enrolled in another region: refused `ENROLLED_ELSEWHERE` naming its province (recorded
///   once); enrolled here already: nothing to write; otherwise enrolled, a refusal recorded
///   before being replaced;
/// - a refusal of someone enrolled here and assessed is not applied (the payable must be dealt
///   with first); the same refusal recorded already is not written again.
pub fn decide_enrolment(
    request: &EnrolmentRequest,
    region: RegionCode,
    stored: &[StoredEnrolment],
    assessed: bool,
) -> (Option<EnrolmentWrite>, EnrolmentOutcome) {
    let fee_year = request.fee_year();
    let own = stored.iter().find(|e| e.region == region);
    let refusal_recorded = |refusal: &EnrolmentRefusal| {
        own.is_some_and(|e| {
            e.status == EnrolmentStatus::Refused
                && e.refusal_code.as_deref() == Some(refusal.code())
        })
    };
    let refuse = |refusal: &EnrolmentRefusal| EnrolmentWrite {
        fee_year,
        status: EnrolmentStatus::Refused,
        refusal_code: Some(refusal.code().to_owned()),
        refusal_message: Some(refusal.to_string()),
        covered_from: None,
    };
    match request {
        EnrolmentRequest::Enrol { covered_from, .. } => {
            let elsewhere = stored
                .iter()
                .find(|e| e.region != region && e.status == EnrolmentStatus::Enrolled);
            if let Some(other) = elsewhere {
                let refusal = EnrolmentRefusal::enrolled_elsewhere(other.region);
                let write = (!refusal_recorded(&refusal)).then(|| refuse(&refusal));
                (write, EnrolmentOutcome::Refused(refusal))
            } else if own.is_some_and(|e| e.status == EnrolmentStatus::Enrolled) {
                (None, EnrolmentOutcome::AlreadyEnrolled)
            } else {
                let write = EnrolmentWrite {
                    fee_year,
                    status: EnrolmentStatus::Enrolled,
                    refusal_code: None,
                    refusal_message: None,
                    covered_from: Some(*covered_from),
                };
                (Some(write), EnrolmentOutcome::Enrolled)
            }
        }
        EnrolmentRequest::Refuse { refusal, .. } => {
            if own.is_some_and(|e| e.status == EnrolmentStatus::Enrolled) && assessed {
                (None, EnrolmentOutcome::KeptBecauseAssessed(refusal.clone()))
            } else if refusal_recorded(refusal) {
                (None, EnrolmentOutcome::Refused(refusal.clone()))
            } else {
                (
                    Some(refuse(refusal)),
                    EnrolmentOutcome::Refused(refusal.clone()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    fn year() -> FeeYear {
        FeeYear::new(2027).unwrap()
    }

    fn enrol() -> EnrolmentRequest {
        EnrolmentRequest::Enrol {
            fee_year: year(),
            covered_from: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
        }
    }

    fn stored(code: &str, status: EnrolmentStatus, refusal: Option<&str>) -> StoredEnrolment {
        StoredEnrolment {
            region: region(code),
            status,
            refusal_code: refusal.map(str::to_owned),
        }
    }

    #[test]
    fn a_new_person_is_enrolled_and_an_enrolled_one_left_alone() {
        let (write, outcome) = decide_enrolment(&enrol(), region("320600"), &[], false);
        assert_eq!(outcome, EnrolmentOutcome::Enrolled);
        let write = write.unwrap();
        assert_eq!(write.status, EnrolmentStatus::Enrolled);
        assert_eq!(write.covered_from, NaiveDate::from_ymd_opt(2027, 1, 1));

        let here = [stored("320600", EnrolmentStatus::Enrolled, None)];
        assert_eq!(
            decide_enrolment(&enrol(), region("320600"), &here, true),
            (None, EnrolmentOutcome::AlreadyEnrolled)
        );
    }

    #[test]
    fn enrolled_in_another_region_is_refused_once_naming_its_province() {
        let there = [stored("320500", EnrolmentStatus::Enrolled, None)];
        let (write, outcome) = decide_enrolment(&enrol(), region("320600"), &there, false);
        let EnrolmentOutcome::Refused(refusal) = outcome else {
            panic!("not refused")
        };
        assert_eq!(refusal.code(), "ENROLLED_ELSEWHERE");
        assert!(refusal.to_string().contains("江苏"), "{refusal}");
        assert_eq!(write.unwrap().status, EnrolmentStatus::Refused);

        // Recorded already: not written again.
        let both = [
            there[0].clone(),
            stored(
                "320600",
                EnrolmentStatus::Refused,
                Some("ENROLLED_ELSEWHERE"),
            ),
        ];
        let (write, outcome) = decide_enrolment(&enrol(), region("320600"), &both, false);
        assert_eq!(write, None);
        assert!(matches!(outcome, EnrolmentOutcome::Refused(_)));
    }

    #[test]
    fn a_recorded_refusal_gives_way_to_an_enrolment() {
        let refused = [stored(
            "320600",
            EnrolmentStatus::Refused,
            Some("EMPLOYEE_INSURED"),
        )];
        let (write, outcome) = decide_enrolment(&enrol(), region("320600"), &refused, false);
        assert_eq!(outcome, EnrolmentOutcome::Enrolled);
        assert_eq!(write.unwrap().status, EnrolmentStatus::Enrolled);
    }

    #[test]
    fn a_refusal_waits_while_the_person_is_assessed_and_is_recorded_once() {
        let request = EnrolmentRequest::Refuse {
            fee_year: year(),
            refusal: EnrolmentRefusal::EmployeeInsured,
        };
        let here = [stored("320600", EnrolmentStatus::Enrolled, None)];
        assert_eq!(
            decide_enrolment(&request, region("320600"), &here, true),
            (
                None,
                EnrolmentOutcome::KeptBecauseAssessed(EnrolmentRefusal::EmployeeInsured)
            )
        );
        let (write, _) = decide_enrolment(&request, region("320600"), &here, false);
        let write = write.unwrap();
        assert_eq!(write.status, EnrolmentStatus::Refused);
        assert_eq!(write.refusal_code.as_deref(), Some("EMPLOYEE_INSURED"));

        let recorded = [stored(
            "320600",
            EnrolmentStatus::Refused,
            Some("EMPLOYEE_INSURED"),
        )];
        assert_eq!(
            decide_enrolment(&request, region("320600"), &recorded, false),
            (
                None,
                EnrolmentOutcome::Refused(EnrolmentRefusal::EmployeeInsured)
            )
        );
    }
}
