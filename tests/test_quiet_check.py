"""What Keras says about nandoctor's own work (saving, reloading, probing the model) stays off
the user's output: check() reports findings and notes, not its dependencies' warnings."""

import logging
import warnings

import nandoctor


def tied_model_with_a_custom_compile(keras):
    """The tie probe saves and reloads this model; Keras then warns that `compile()` was not
    called on loading, because the class overrides it (as KerasHub's tasks do)."""

    @keras.saving.register_keras_serializable(package="quiet_check_test")
    class CustomCompile(keras.Model):
        def compile(self, *args, **kwargs):
            super().compile(*args, **kwargs)

    inputs = keras.Input((4,), dtype="int32")
    embedding = keras.layers.ReversibleEmbedding(10, 3, name="tied")
    outputs = keras.layers.Activation("softmax")(embedding(embedding(inputs), reverse=True))
    model = CustomCompile(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_check_lets_no_dependency_warning_through_and_restores_the_users_filters(keras):
    model = tied_model_with_a_custom_compile(keras)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        report = nandoctor.check(model)
        assert warnings.filters == filters
    assert [str(warning.message) for warning in caught] == []
    assert report.files[0].status == "scanned" and not any("tie-probe" in note for note in report.files[0].notes)


def test_keras_still_warns_about_the_same_round_trip_outside_check(keras, tmp_path):
    """The warning silenced above is real: the same save and reload, done by the user, shows it."""
    model = tied_model_with_a_custom_compile(keras)
    model.save(tmp_path / "m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras.models.load_model(tmp_path / "m.keras", safe_mode=False)
    assert any("`compile()` was not called" in str(warning.message) for warning in caught)


def test_the_dependencies_loggers_are_restored_after_check(keras):
    absl = logging.getLogger("absl")
    absl.setLevel(logging.INFO)
    nandoctor.check(tied_model_with_a_custom_compile(keras), probes=True)
    assert absl.level == logging.INFO
