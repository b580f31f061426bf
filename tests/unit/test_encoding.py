"""aecluster/encoding.py: recipes checked and completed, images -> codes, codes -> fitted groups,
and the validation score of a training history."""

RECIPE = {"reduce": "pca:2", "method": "kmeans"}


def test_validation_scores_encode_on_the_models_device_not_the_default(two_groups, trained_checkpoint, monkeypatch):
    import aecluster.devices
    from aecluster.checkpoint import load_model
    from aecluster.encoding import validation_scorer

    monkeypatch.setattr(aecluster.devices, "default_device", lambda: "meta")
    model, _ = load_model(trained_checkpoint)
    validation_scorer(*two_groups, RECIPE)(model)  # on the default (meta) device this raises
    assert next(model.parameters()).device.type == "cpu"

