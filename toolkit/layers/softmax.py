"""The softmax over a large vocabulary, as a negative log-likelihood per step: sampled while training.

A language model's loss at each step is -log p(next word | the words before), p a softmax over
the whole vocabulary. With 30,000 words the output layer costs about 30 times the recurrent one,
per step, in each direction of backpropagation. Sampled softmax (Jean et al., 2015) trains on the
true word and S words drawn from a proposal q (here log-uniform: rank r has probability
log((r + 2) / (r + 1)) / log(V + 1), which suits a vocabulary sorted by frequency, as ours is):
each logit is corrected by -log(S q(w)), so the sampled loss estimates the full one. Validation
and every use of the trained model take the full softmax: the exact likelihood, whose exponent
is the perplexity.
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class NextTokenLoss(keras.layers.Layer):
    """(hidden states `[batch, time, units]`, next ids `[batch, time]`) -> -log p(next id), `[batch, time]`.

    Holds the output embedding (`kernel`, `[vocabulary_size, units]`) and `bias`. Padding
    targets (id 0) cost 0. `samples`: words drawn per batch for the sampled softmax in
    training; 0 (or `samples >= vocabulary_size`) trains with the full softmax.
    """

    def __init__(self, vocabulary_size, samples=1024, **kwargs):
        super().__init__(**kwargs)
        if vocabulary_size < 2:
            raise ValueError(f"vocabulary_size must be at least 2. Received: vocabulary_size={vocabulary_size!r}")
        if samples < 0:
            raise ValueError(f"samples must be at least 0. Received: samples={samples!r}")
        self.vocabulary_size = vocabulary_size
        self.samples = samples
        self.seed = keras.random.SeedGenerator(0)

    def build(self, hidden_shape, targets_shape=None):
        units = hidden_shape[-1]
        self.kernel = self.add_weight(shape=(self.vocabulary_size, units), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.vocabulary_size,), initializer="zeros", name="bias")

    def logits(self, hidden):
        """The full softmax's logits over the vocabulary, `[..., vocabulary_size]`."""
        kernel, bias = ops.cast(self.kernel, hidden.dtype), ops.cast(self.bias, hidden.dtype)
        return ops.matmul(hidden, ops.transpose(kernel)) + bias

    def call(self, hidden, targets, training=None):
        hidden = ops.cast(hidden, "float32")
        targets = ops.cast(targets, "int32")
        if training and 0 < self.samples < self.vocabulary_size:
            nll = self._sampled(hidden, targets)
        else:
            log_p = ops.log_softmax(self.logits(hidden), axis=-1)
            nll = -ops.take_along_axis(log_p, ops.expand_dims(targets, -1), axis=-1)[..., 0]
        return ops.where(targets > 0, nll, 0.0)

    def _sampled(self, hidden, targets):
        v, s = self.vocabulary_size, self.samples
        # Log-uniform draws by inverting the CDF: floor(exp(u log(V + 1))) - 1 lies in [0, V).
        u = keras.random.uniform((s,), seed=self.seed)
        sampled = ops.clip(ops.cast(ops.floor(ops.exp(u * math.log(v + 1.0))), "int32") - 1, 0, v - 1)

        def log_expected(ids):  # log(S q(id)): how often the proposal draws id among S samples
            ids = ops.cast(ids, "float32")
            return ops.log(s * ops.log((ids + 2.0) / (ids + 1.0)) / math.log(v + 1.0))

        true_logit = (ops.sum(hidden * ops.take(self.kernel, targets, axis=0), axis=-1)
                      + ops.take(self.bias, targets) - log_expected(targets))
        sampled_logits = (ops.matmul(hidden, ops.transpose(ops.take(self.kernel, sampled, axis=0)))
                          + ops.take(self.bias, sampled) - log_expected(sampled))
        # A sample that is the true word would count it twice: leave it out.
        hit = ops.expand_dims(targets, -1) == sampled
        sampled_logits = ops.where(hit, -1e9, sampled_logits)
        logits = ops.concatenate([ops.expand_dims(true_logit, -1), sampled_logits], axis=-1)
        return ops.logsumexp(logits, axis=-1) - true_logit

    def compute_output_shape(self, hidden_shape, targets_shape=None):
        return tuple(hidden_shape[:-1])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "samples": self.samples}


@keras.saving.register_keras_serializable(package="toolkit")
class TokenMean(keras.losses.Loss):
    """The mean of per-step losses over the real (non-padding) next tokens of a batch: `y_true` the next ids,
    `y_pred` what `NextTokenLoss` computed."""

    def __init__(self, name="token_mean", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        real = ops.cast(ops.cast(y_true, "int32") > 0, y_pred.dtype)
        return ops.sum(y_pred * real) / ops.maximum(ops.sum(real), 1.0)


@keras.saving.register_keras_serializable(package="toolkit")
class Perplexity(keras.metrics.Metric):
    """exp(mean negative log-likelihood per real next token), accumulated over the batches of an epoch.

    On the training batches it is the sampled softmax's (an estimate); on validation the exact one.
    """

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        real = ops.cast(ops.cast(y_true, "int32") > 0, "float32")
        self.total.assign_add(ops.sum(ops.cast(y_pred, "float32") * real))
        self.count.assign_add(ops.sum(real))

    def result(self):
        return ops.exp(self.total / ops.maximum(self.count, 1.0))
