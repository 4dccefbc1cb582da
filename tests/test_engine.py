import nandoctor
from nandoctor.view import weight_stats
from tests.conftest import FIXTURES

MODEL = str(FIXTURES / "broken" / "seed_c_zero_rows_cosine.keras")


def test_weights_are_not_read_when_no_selected_rule_needs_them(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights were read")

    monkeypatch.setattr(weight_stats, "compute_stats", refuse)
    monkeypatch.setattr("nandoctor.view.model_view.compute_stats", refuse)
    report = nandoctor.scan(MODEL, select=["ND601", "ND901"])
    assert {f.code for f in report.findings} == {"ND901"}


def test_each_tensor_is_read_once_for_all_weight_rules(monkeypatch):
    calls = []
    real = weight_stats.compute_stats

    def counting(source, progress=None):
        calls.append(source)
        return real(source, progress)

    monkeypatch.setattr("nandoctor.view.model_view.compute_stats", counting)
    report = nandoctor.scan(MODEL, select=["ND1"])
    assert len(calls) == len(set(map(id, calls))) == 6  # two embeddings, the conv and dense kernels and biases
    assert {f.code for f in report.findings} == {"ND101"}
