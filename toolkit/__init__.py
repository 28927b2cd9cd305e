"""Train, export and serve the classic deep-learning models for text and images.

Importing `toolkit` itself is cheap: TensorFlow and Keras are imported by the
submodules that need them, so the command line answers `--help` instantly.
"""

from toolkit.errors import ToolkitError

__version__ = "0.3.0"
__all__ = ["ToolkitError", "load", "__version__"]


def load(model, runtime="auto"):
    """An exported model, ready to answer: `toolkit.load("sentiment")`.

    `model` is the name of a shipped or installed model (see `toolkit models`), a TF Serving
    model folder (its newest version is used) or a version folder. What comes back depends on
    the model's kind; every answer is plain Python (a list of dicts, one per input, in order):

        text classifier   .predict(texts)                -> [{"label", "probability"}]
        image classifier  .predict(images)               -> [{"label", "probability", "top_k"}]
        captioner         .caption(images)               -> [{"caption", "score"}]
        translator        .translate(sentences)          -> [{"translation", "score"}]
        forecaster        .forecast(series or values, steps) -> [{"time" or "step", "forecast", ...}]

    An image is a path, encoded bytes or a numpy array; one that cannot be read gets
    `{"error": message}` in its place. Errors a caller can cause raise `toolkit.ToolkitError`.
    `runtime` ("auto", "litert" or "tensorflow"): "auto" answers through the model's LiteRT form where
    it has one (text and image classifiers, forecasters) without importing TensorFlow, else through
    its SavedModel; `.runtime` on the predictor says which. TensorFlow, where needed, is imported here,
    on first use, not by `import toolkit`.
    """
    from toolkit.tasks import load as load_model

    return load_model(model, runtime=runtime)

