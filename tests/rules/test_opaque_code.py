import nandoctor


def test_each_lambda_and_custom_class_is_named(keras, save):
    @keras.saving.register_keras_serializable(package="tests")
    class Shift(keras.layers.Layer):
        def call(self, x):
            return x + 1.0

    inputs = keras.Input((4,))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = Shift(name="shift")(x)
    findings = [f for f in nandoctor.scan(save(keras.Model(inputs, x), "m.keras")).findings if f.code == "ND901"]
    assert [(f.layer, f.details["kind"]) for f in findings] == [("double", "lambda"), ("shift", "custom layer")]
    assert "bytecode" in findings[0].message
    assert "registered as 'tests>Shift'" in findings[1].message


def test_keras_own_layers_are_not_opaque(keras, save):
    inputs = keras.Input((4,))
    x = keras.layers.Rescaling(0.5)(keras.layers.Dense(3)(inputs))
    assert nandoctor.scan(save(keras.Model(inputs, x), "m.keras")).findings == []


def test_keras2_lambda_is_named(tf_keras, save):
    model = tf_keras.Sequential([tf_keras.layers.Lambda(lambda t: t * 2.0, input_shape=(4,), name="double")])
    (finding,) = nandoctor.scan(save(model, "m.h5")).findings
    assert (finding.code, finding.layer) == ("ND901", "double")
