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

from toolkit.config import MAX_BEAM, MAX_LENGTH_PENALTY

NEG = -1e9


def beam_search(step, states, context, max_lengths, *, beam_size, bos_id, eos_id, length_penalty=1.0,
                banned_ids=(), alignments=False):
    """Searches `beam_size` hypotheses for every row of a batch.

    - `step(tokens [N], states, context) -> (log_probs [N, V], states)`, or, with `alignments`,
      `(log_probs, states, attention [N, S])`: the weights the step gave the memory's S positions;
    - `states`: nested batch-first tensors, the decoder's state (reordered as beams are chosen);
    - `context`: nested batch-first tensors the step reads but never changes (the memory);
    - `max_lengths`: `[batch]` int32, the most tokens a row may produce, end token included;
    - `beam_size`, `length_penalty`: one for the whole batch, or one per row (`[batch]`), so that
      rows of different requests batched together (TF Serving's batching) each get their own.
      A beam size is cut to [1, MAX_BEAM], a length penalty to [0, MAX_LENGTH_PENALTY] (not finite: 1).

    A row with a smaller beam than the batch's widest keeps only its own best `beam_size`
    hypotheses alive at every step (the others are dead slots), so it gets exactly the search
    it would get alone.

    Returns `(tokens [batch, L] int32, 0-padded, end token left out; scores [batch])`, where a
    score is the chosen hypothesis' log-probability divided by its length ** length_penalty;
    with `alignments`, a third value: the attention of each chosen token, `[batch, L, S]`.
    """
    batch = tf.shape(max_lengths)[0]
    widths = tf.clip_by_value(tf.broadcast_to(tf.convert_to_tensor(beam_size, tf.int32), [batch]), 1, MAX_BEAM)
    k = tf.reduce_max(tf.concat([widths, [1]], 0))
    tile = lambda t: tf.repeat(t, k, axis=0)  # noqa: E731  (row b*k + j is beam j of row b)
    states = tf.nest.map_structure(tile, states)
    context = tf.nest.map_structure(tile, context)
    limits = tile(tf.cast(max_lengths, tf.int32))
    rows = batch * k
    # Slot j of row b is alive if j < that row's beam size; dead slots are finished from the start.
    alive = tf.reshape(tf.range(k)[None, :] < widths[:, None], [rows])
    penalties = tf.broadcast_to(tf.convert_to_tensor(length_penalty, tf.float32), [batch])
    penalties = tf.clip_by_value(tf.where(tf.math.is_finite(penalties), penalties, 1.0), 0.0, MAX_LENGTH_PENALTY)

    # Only beam 0 is alive at first, so the first expansion does not pick k copies of one token.
    first = tf.one_hot(tf.zeros([batch], tf.int32), k, on_value=0.0, off_value=NEG)
    log_p = tf.reshape(first, [rows])
    tokens = tf.fill([rows], tf.cast(bos_id, tf.int32))
    sequences = tf.zeros([rows, 0], tf.int32)
    lengths = tf.zeros([rows], tf.int32)
    finished = ~alive
    # With alignments, each step's attention (of the rows it kept) and their parents, traced back once at
    # the end: memory grows by one [rows, S] a step, and nothing is copied from step to step.
    steps = tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None])
    parent_steps = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None])

    def body(t, tokens, states, log_p, sequences, lengths, finished, steps, parent_steps):
        scores, new_states, *weights = step(tokens, states, context)
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
        if alignments:
            steps = steps.write(t, tf.gather(weights[0], parents))
            parent_steps = parent_steps.write(t, parents)
        states = tf.nest.map_structure(lambda s: tf.gather(s, parents), new_states)
        lengths = tf.gather(lengths, parents) + tf.cast(~was_finished, tf.int32)
        finished = was_finished | tf.equal(token, eos_id) | ~alive
        log_p = tf.where(alive, tf.reshape(best.values, [rows]), NEG)  # dead slots stay dead
        return t + 1, token, states, log_p, sequences, lengths, finished, steps, parent_steps

    def cond(t, tokens, states, log_p, sequences, lengths, finished, *_):
        return (t < tf.reduce_max(limits)) & ~tf.reduce_all(finished)

    any_rows = lambda s: tf.TensorShape([None]).concatenate(s.shape[1:])  # noqa: E731  (known batch sizes too)
    shapes = (tf.TensorShape([]), tf.TensorShape([None]), tf.nest.map_structure(any_rows, states),
              tf.TensorShape([None]), tf.TensorShape([None, None]), tf.TensorShape([None]), tf.TensorShape([None]),
              tf.TensorShape(None), tf.TensorShape(None))
    _, _, _, log_p, sequences, lengths, finished, steps, parent_steps = tf.while_loop(
        cond, body, (tf.constant(0), tokens, states, log_p, sequences, lengths, finished, steps, parent_steps),
        shape_invariants=shapes)

    normalised = log_p / tf.pow(tf.cast(tf.maximum(lengths, 1), tf.float32), tile(penalties))
    normalised = tf.where(alive, normalised, -float("inf"))
    normalised = tf.reshape(normalised, [batch, k])
    choice = tf.argmax(normalised, axis=1, output_type=tf.int32)
    chosen = tf.gather(sequences, choice + tf.range(batch) * k)
    # Keep the tokens before the first end token.
    before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(chosen, eos_id), tf.int32), axis=1), 0)
    chosen = tf.where(before_end, chosen, tf.zeros_like(chosen))
    scores = tf.gather(normalised, choice, batch_dims=1)
    if not alignments:
        return chosen, scores
    memory_length = tf.shape(tf.nest.flatten(context)[0])[1]
    attention = _traced_back(steps, parent_steps, choice + tf.range(batch) * k, memory_length)
    return chosen, scores, tf.where(before_end[:, :, None], attention, 0.0)


def _traced_back(steps, parent_steps, last_rows, memory_length):
    """The attention of the hypotheses that end in `last_rows`, `[batch, L, S]`: from the last step to the
    first, each step's row is the parent of the next step's."""
    def back(carry, step):
        rows, _ = carry
        weights, parents = step
        return tf.gather(parents, rows), tf.gather(weights, rows)

    blank = tf.zeros([tf.shape(last_rows)[0], memory_length])
    _, attention = tf.scan(back, (steps.stack(), parent_steps.stack()), initializer=(last_rows, blank), reverse=True)
    return tf.transpose(attention, [1, 0, 2])
