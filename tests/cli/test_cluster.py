"""Commands cluster, predict and evaluate (and size, given corrupt checkpoints): refusals, saved labels, purity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aecluster.checkpoint import compress_state
from aecluster.cli import main
from aecluster.csvio import read_predictions
from aecluster.registry import model_config
from tests.conftest import (
    FIRST,
    METHODS,
    SAVED_MODEL_CORRUPTIONS,
    SAVED_MODEL_IDS,
    assert_refused,
    corrupt_checkpoint,
    corrupt_saved_model,
    field_cases,
    folder_state,
    replace_tensor,
    run_main,
    self_nested,
    spoil_file,
)


def as_int8(scale):
    """The weights as int8 with every scale set to `scale`."""
    def change(p):
        state, scales = compress_state(p["state_dict"], "int8")
        p.update(state_dict=state, weight_format="int8", weight_scales={key: scale for key in scales})
    return change


# (case, change of the payload dictionary, message fragment)
CORRUPTIONS = [
    ("meta tensor", replace_tensor(lambda t: torch.empty(t.shape, device="meta")), "on device 'meta'"),
    ("sparse tensor", replace_tensor(lambda t: t.to_sparse()), "a sparse_coo tensor, expected a dense one"),
    ("complex tensor", replace_tensor(lambda t: t.to(torch.complex64)), "dtype complex64, expected real numbers"),
    ("expanded 2^16 x 2^16", replace_tensor(lambda t: torch.zeros(1, 1).expand(2**16, 2**16)),
     "shape [65536, 65536] over 4 stored bytes (an expanded view)"),
    ("expanded to its own shape", replace_tensor(lambda t: torch.zeros(1, 1, 1, 1).expand(*t.shape)),
     "an expanded view"),
    ("bool tensor", replace_tensor(lambda t: t > 0), f"'{FIRST}' is of dtype bool where the model holds float32"),
    ("integer weights", replace_tensor(lambda t: t.to(torch.int64)), "is of dtype int64 where the model holds float32"),
    ("NaN weight", replace_tensor(lambda t: t.clone().fill_(float("nan"))), "holding NaN or infinite values"),
    ("wrong shape", replace_tensor(lambda t: t.reshape(16, 27)), "is (16, 27) where its settings give (16, 3, 3, 3)"),
    ("missing tensor", lambda p: p["state_dict"].pop(FIRST), f"1 tensors missing, e.g. '{FIRST}'"),
    ("foreign tensor", lambda p: p["state_dict"].__setitem__("encoder.extra", torch.zeros(2)),
     "'encoder.extra' is not one of its tensors"),
    ("no encoder", lambda p: [p["state_dict"].pop(key) for key in list(p["state_dict"]) if key.startswith("encoder.")],
     "tensors missing, e.g. 'encoder."),
    ("widths 2^40", lambda p: p["config"].__setitem__("widths", [2**40] * 3),
     "model 'improved': widths is [1099511627776, 1099511627776, 1099511627776], expected a list of 1 to 8 values"),
    ("width_multiplier inf", lambda p: p["config"].__setitem__("width_multiplier", float("inf")),
     "width_multiplier is inf, expected a number in (0, 16]"),
    ("int8 scale 1e300", as_int8(1e300), "is 1e+300: 127 times it is beyond float32"),
    ("int8 scale -1", as_int8(-1.0), "is -1.0, expected a positive number"),
    ("int8 scale a string", as_int8("big"), "is 'big', expected a positive number"),
    ("int8 without scales", lambda p: (as_int8(1.0)(p), p.update(weight_scales={})),
     "int8 weights need a weight scale"),
    ("a scale of a float tensor", lambda p: p.update(weight_scales={FIRST: 1.0}), "which is not an int8 tensor"),
    ("epoch NaN", lambda p: p.update(epoch=float("nan")), "'epoch' is nan, expected a non-negative number"),
    ("a set of values", lambda p: p.update(notes={1, 2}), "notes is a set, expected plain values and tensors"),
    ("a list nested 40 deep in itself", self_nested(40), "nest deeper than 16 levels"),
]


@pytest.mark.parametrize("case, change, fragment", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
@pytest.mark.parametrize("command", ["cluster", "size"])
def test_a_corrupt_checkpoint_is_one_line_and_writes_nothing(folder, payload, capsys, case, change, fragment,
                                                              command):
    corrupt_checkpoint(payload, change, folder / "bad.pth")
    before = folder_state(folder)
    argv = {"cluster": ["cluster", folder / "x.npy", folder / "bad.pth", folder / "o.csv"],
            "size": ["size", folder / "bad.pth"]}[command]
    code, err = run_main(argv, capsys)
    assert_refused(code, err, fragment, folder, before)
    assert f"{folder / 'bad.pth'}: " in err


def test_finite_but_huge_int8_weights_give_one_line_after_encoding(folder, payload, capsys):
    corrupt_checkpoint(payload, as_int8(1e30), folder / "bad.pth")
    before = folder_state(folder)
    code, err = run_main(["cluster", folder / "x.npy", folder / "bad.pth", folder / "o.csv", "--quiet"], capsys)
    assert_refused(code, err, "its encoder gives NaN or infinite codes for 8 of 8 images", folder, before)


SETTINGS = [("config", key) for key in model_config("improved")]
CHECKPOINT_FIELDS = [("format",), ("format_version",), ("aecluster_version",), ("model",), ("config",), *SETTINGS,
                     ("recipe",), ("recipe", "reduce"), ("recipe", "method"), ("epoch",), ("state_dict",),
                     ("state_dict", FIRST), ("state_dict", "encoder.features.0.1.running_var"),
                     ("state_dict", "encoder.features.0.1.num_batches_tracked"),
                     ("state_dict", "decoder.layers.0.weight")]
# Left out by design: a file without a format version is format 0; the version that wrote it is
# for information; the registered settings and the default recipe stand in for missing ones.
OPTIONAL = [("format_version",), ("aecluster_version",), ("config",), *SETTINGS, ("recipe",), ("recipe", "reduce"),
            ("recipe", "method"), ("epoch",)]
HARMLESS = {(field, "missing") for field in OPTIONAL} | {(("aecluster_version",), kind)
                                                         for kind in ("wrong type", "non-finite")}


@pytest.mark.parametrize("field, kind", field_cases(CHECKPOINT_FIELDS, HARMLESS))
def test_every_field_of_a_checkpoint_spoiled_is_refused_in_one_line(folder, capsys, field, kind):
    bad = spoil_file(folder / "m.pth", field, kind, folder / "bad.pth")
    before = folder_state(folder)
    code, err = run_main(["cluster", folder / "x.npy", bad, folder / "o.csv"], capsys)
    assert_refused(code, err, f"{bad}: ", folder, before)


@pytest.mark.parametrize("case, method, change, fragment", SAVED_MODEL_CORRUPTIONS, ids=SAVED_MODEL_IDS)
def test_predict_refuses_a_corrupt_saved_model_in_one_line(saved, tmp_path, capsys, case, method, change, fragment):
    bad = corrupt_saved_model(saved, method, change, tmp_path)
    before = folder_state(tmp_path)
    code, err = run_main(["predict", bad, saved / "x.npy", tmp_path / "p.csv"], capsys)
    assert_refused(code, err, fragment, tmp_path, before)
    assert f"{bad}: " in err


@pytest.mark.parametrize("method", METHODS)
def test_every_good_saved_model_predicts_the_labels_it_was_fitted_with(saved, tmp_path, method):
    model, images, output = (str(path) for path in (saved / f"s_{method}.pth", saved / "x.npy", tmp_path / "p.csv"))
    assert main(["predict", model, images, output, "--quiet"]) == 0
    assert np.array_equal(read_predictions(tmp_path / "p.csv"), read_predictions(saved / f"o_{method}.csv"))


LINK = ("fitted", "reduction", "links", 1)
GROUPS = ("fitted", "groups")
SAVED_FIELDS = [("fitted",), ("fitted", "reduction"), *[("fitted", "reduction", key) for key in
                                                         ("spec", "standardize", "shift", "scale", "links")],
                ("fitted", "reduction", "links", 0), *[(*LINK, key) for key in ("name", "mean", "components", "scale")],
                GROUPS, *[(*GROUPS, key) for key in ("method", "threshold", "random_state", "n_clusters",
                                                     "fine_clusters", "weights_", "bias_")],
                ("fitted", "label_map"), ("recipe",), ("weight_format",)]
# Left out by design: the fitted groups carry the recipe they were fitted with; weights without
# a format are float32 (as the saved encoder's are).
SAVED_HARMLESS = {(("recipe",), "missing"), (("weight_format",), "missing")}


@pytest.mark.parametrize("field, kind", field_cases(SAVED_FIELDS, SAVED_HARMLESS))
def test_every_field_of_a_saved_model_spoiled_is_refused_in_one_line(saved, tmp_path, capsys, field, kind):
    bad = spoil_file(saved / "s_scan.pth", field, kind, tmp_path / "bad.pth")
    before = folder_state(tmp_path)
    code, err = run_main(["predict", bad, saved / "x.npy", tmp_path / "p.csv"], capsys)
    assert_refused(code, err, f"{bad}: ", tmp_path, before)


def test_evaluate_adds_purity_when_groups_and_labels_differ_in_number(tmp_path, capsys):
    truth = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    np.save(tmp_path / "y.npy", truth)
    for name, groups in (("four", [0, 0, 0, 0, 1, 1, 2, 2, 2, 3]), ("two", [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]),
                         ("one", [0] * 10)):
        rows = "".join(f"{i},{g}\n" for i, g in enumerate(groups))
        (tmp_path / f"{name}.csv").write_text("id,label\n" + rows)
    assert main(["evaluate", str(tmp_path / "four.csv"), str(tmp_path / "y.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ACC 0.6000  NMI ")
    assert lines[1] == ("purity 0.9000 (each of the 4 groups takes its majority label; ACC matches groups to "
                        "labels one to one, so 2 groups stay unmatched)")
    assert main(["evaluate", str(tmp_path / "two.csv"), str(tmp_path / "y.npy")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["evaluate", str(tmp_path / "one.csv"), str(tmp_path / "y.npy")]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "purity 0.5000 (the one group takes its majority label; ACC matches groups to labels one to one, "
        "so 1 label stays unmatched)")
