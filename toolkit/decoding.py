"""Searching for the most likely output sentence, token by token, as TensorFlow ops.

A decoder gives p(y_t | y_<t, input); the sentence that maximises the product over t
cannot be found exactly, so two approximations are offered:

- greedy: take the most likely token at every step (a beam of one);
- beam search: keep the `beam_size` most likely prefixes at every step, extend each by
  every token, keep the best `beam_size` of those. A finished hypothesis (it emitted
  the end token) keeps its score and its place.

Raw log-probabilities favour short outputs (every token costs probability), so finished
hypotheses are compared by log p / length**length_penalty (1: per-token average, 0: raw).
Every row stops at its own `max_lengths` (an end token is forced there), so even a
pathological input costs bounded time.

The search is written with `tf.while_loop` so that it runs inside an exported SavedModel.
"""

import tensorflow as tf

NEG = -1e9


def beam_search(step, states, context, max_lengths, *, beam_size, bos_id, eos_id, length_penalty=1.0,
                banned_ids=()):
    """Searches `beam_size` hypotheses for every row of a batch.

    - `step(tokens [N], states, context) -> (log_probs [N, V], states)`;
    - `states`: nested batch-first tensors, the decoder's state (reordered as beams are chosen);
    - `context`: nested batch-first tensors the step reads but never changes (the memory);
    - `max_lengths`: `[batch]` int32, the most tokens a row may produce, end token included.

    Returns `(tokens [batch, L] int32, 0-padded, end token left out; scores [batch])`, where a
    score is the chosen hypothesis' log-probability divided by its length ** length_penalty.
    """
    batch = tf.shape(max_lengths)[0]
    k = tf.convert_to_tensor(beam_size, tf.int32)
    tile = lambda t: tf.repeat(t, k, axis=0)  # noqa: E731  (row b*k + j is beam j of row b)
    states = tf.nest.map_structure(tile, states)
    context = tf.nest.map_structure(tile, context)
    limits = tile(tf.cast(max_lengths, tf.int32))
    rows = batch * k

    # Only beam 0 is alive at first, so the first expansion does not pick k copies of one token.
    first = tf.one_hot(tf.zeros([batch], tf.int32), k, on_value=0.0, off_value=NEG)
    log_p = tf.reshape(first, [rows])
    tokens = tf.fill([rows], tf.cast(bos_id, tf.int32))
    sequences = tf.zeros([rows, 0], tf.int32)
    lengths = tf.zeros([rows], tf.int32)
    finished = tf.zeros([rows], tf.bool)

    def body(t, tokens, states, log_p, sequences, lengths, finished):
        scores, new_states = step(tokens, states, context)
        vocabulary = tf.shape(scores)[1]
        eos_only = tf.one_hot(eos_id, vocabulary, on_value=0.0, off_value=NEG)
        if banned_ids:
            scores += tf.reduce_sum(tf.one_hot(list(banned_ids), vocabulary, on_value=NEG, off_value=0.0), 0)
        # A finished hypothesis can only "emit" end tokens, at no cost; one at its limit must end.
        must_end = finished | (t + 1 >= limits)
        forced = eos_only[None, :] + tf.where(finished, 0.0, scores[:, eos_id])[:, None]
        scores = tf.where(must_end[:, None], forced, scores)
        total = tf.reshape(log_p[:, None] + scores, [batch, k * vocabulary])
        best = tf.math.top_k(total, k=k)
        beam = best.indices // vocabulary
        token = tf.reshape(best.indices % vocabulary, [rows])
        parents = tf.reshape(beam + tf.range(batch)[:, None] * k, [rows])
        was_finished = tf.gather(finished, parents)
        sequences = tf.concat([tf.gather(sequences, parents), token[:, None]], axis=1)
        states = tf.nest.map_structure(lambda s: tf.gather(s, parents), new_states)
        lengths = tf.gather(lengths, parents) + tf.cast(~was_finished, tf.int32)
        finished = was_finished | tf.equal(token, eos_id)
        return t + 1, token, states, tf.reshape(best.values, [rows]), sequences, lengths, finished

    def cond(t, tokens, states, log_p, sequences, lengths, finished):
        return (t < tf.reduce_max(limits)) & ~tf.reduce_all(finished)

    any_rows = lambda s: tf.TensorShape([None]).concatenate(s.shape[1:])  # noqa: E731  (known batch sizes too)
    shapes = (tf.TensorShape([]), tf.TensorShape([None]), tf.nest.map_structure(any_rows, states),
              tf.TensorShape([None]), tf.TensorShape([None, None]), tf.TensorShape([None]), tf.TensorShape([None]))
    _, _, _, log_p, sequences, lengths, finished = tf.while_loop(
        cond, body, (tf.constant(0), tokens, states, log_p, sequences, lengths, finished), shape_invariants=shapes)

    normalised = log_p / tf.pow(tf.cast(tf.maximum(lengths, 1), tf.float32), length_penalty)
    normalised = tf.reshape(normalised, [batch, k])
    choice = tf.argmax(normalised, axis=1, output_type=tf.int32)
    chosen = tf.gather(sequences, choice + tf.range(batch) * k)
    # Keep the tokens before the first end token.
    before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(chosen, eos_id), tf.int32), axis=1), 0)
    chosen = tf.where(before_end, chosen, tf.zeros_like(chosen))
    return chosen, tf.gather(normalised, choice, batch_dims=1)
