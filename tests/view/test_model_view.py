"""What several rules ask of one view is worked out once, and the view's shortcuts give numpy's answers."""

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nandoctor.analysis import position_tables as finding_tables
from nandoctor.loaders import load
from nandoctor.rules.positional_scale_mismatch import PositionalScaleMismatch
from nandoctor.rules.positional_table_too_short import PositionalTableTooShort
from nandoctor.view import Layer, ModelView
from nandoctor.view.model_view import _median
from tests.conftest import FIXTURES


def test_a_shared_question_is_answered_once_per_view_and_arguments():
    asked = []

    def layer_count(view, name):
        asked.append((view.path, name))
        return name, len(view.layers)

    first = ModelView("first.keras", "keras", layers=[Layer("dense", "Dense")])
    second = ModelView("second.keras", "keras")
    assert first.shared(layer_count, "a") == first.shared(layer_count, "a") == ("a", 1)
    assert first.shared(layer_count, "b") == ("b", 1)
    assert second.shared(layer_count, "a") == ("a", 0)
    assert asked == [("first.keras", "a"), ("first.keras", "b"), ("second.keras", "a")]


def test_the_position_tables_of_a_file_are_found_once_for_both_rules_that_judge_them(monkeypatch):
    searched = []
    find = finding_tables._find_position_tables
    monkeypatch.setattr(finding_tables, "_find_position_tables", lambda view: searched.append(view.path) or find(view))
    with load(str(FIXTURES / "broken" / "nd504_position_scale_mismatch.keras")) as view:
        scale = list(PositionalScaleMismatch().check(view))
        length = list(PositionalTableTooShort().check(view))
    assert [finding.code for finding in scale] == ["ND504"] and length == []
    assert len(searched) == 1


row_norms = st.one_of(st.floats(min_value=0.0, max_value=1e300), st.sampled_from([0.0, np.nan, np.inf]))


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, st.integers(min_value=0, max_value=40), elements=row_norms))
def test_the_median_of_row_norms_is_numpys_to_the_bit(norms):
    with warnings.catch_warnings():  # numpy warns of the mean of no values (NaN), as it should
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = float(np.median(norms))
    median = _median(norms)
    if np.isnan(expected):
        assert np.isnan(median)
    else:
        assert np.float64(median).tobytes() == np.float64(expected).tobytes()
