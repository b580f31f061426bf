"""Report figures: computing (`compute`) apart from drawing (`draw`); the command line is
`aecluster plots FIGURE ARGS...` (`aecluster.cli.plots`), also runnable as `python -m aecluster.plots`.

Figures (each writes one PNG; `aecluster plots FIGURE --help` says what it draws):

  reconstructions  trainX.npy CKPT out.png [--indices 1,2,3,6,7,9]
  embedding        valX.npy valY.npy CKPT [CKPT ...] out.png
  checkpoints      RUN_DIR trainX.npy valX.npy valY.npy out.png
  confusion        pred.csv labels.npy out.png
  size-accuracy    RESULTS.json out.png
  gallery          images.npy pred.csv out.png [--checkpoint CKPT] [--per-group 8]   (also `aecluster gallery`)

Reconstruction errors are mean squared errors per pixel and channel of the whole, unaugmented
images, with pixels scaled to [-1, 1] exactly as the models see them (`data.to_tensor`): the units
of `train_mse` in a run's history.json, which is measured on the augmented training views.
Accuracies are `metrics.clustering_accuracy`: the fraction of images whose group maps to their
label under the best one-to-one matching of groups to labels.

RESULTS.json of `size-accuracy` (written by a size sweep), UTF-8 JSON::

    {
      "benchmark": "two_source val, 500 images",      (optional string, shown in the title)
      "metric": "val clustering accuracy",             (optional string, the y-axis label)
      "points": [                                      (required, non-empty list)
        {"family": "separable", "params": 12345, "acc": 0.91, "name": "sep-w16"},
        {"family": "plain", "params": 45678, "acc": 0.93, "name": "plain-w32"},
        ...
      ]
    }

Each point: "family" (non-empty string; one line per family, e.g. "separable" or "plain"),
"params" (positive number: trainable parameters of the encoder), "acc" (number in [0, 1]), an
optional "acc_std" (number in [0, 1]: the spread over seeds, drawn as an error bar) and an
optional "name" (string, written beside the point). Each family should have at least 3 points;
fewer draws the figure anyway and prints a warning.

Every drawing function returns its `matplotlib.figure.Figure` (an Agg canvas, never a display).
torch and matplotlib are imported inside functions, so `--help` stays fast.
"""
