"""Beam search against exhaustive search on a toy model whose probabilities are known."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from toolkit.decoding import beam_search

V, BOS, EOS = 5, 2, 1


@pytest.fixture(scope="module")
def bigram():
    """A bigram "decoder": log p(next | previous) from a fixed random table."""
    rng = np.random.default_rng(0)
    table = tf.constant(np.log(rng.dirichlet(np.ones(V) * 0.5, size=V)).astype("float32"))

    def step(tokens, states, context):
        return tf.gather(table, tokens) + 0.0 * context[:, :1], states + 1.0

    return table.numpy(), step


def exhaustive(table, max_length, alpha, banned=(0, BOS)):
    best = None
    for length in range(1, max_length + 1):
        for seq in itertools.product(range(V), repeat=length):
            if seq[-1] != EOS or EOS in seq[:-1] or any(t in banned for t in seq):
                continue
            log_p = sum(table[a, b] for a, b in zip((BOS,) + seq[:-1], seq))
            score = log_p / length ** alpha
            if best is None or score > best[0]:
                best = (score, seq[:-1])
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_a_wide_beam_finds_the_best_sentence(bigram, alpha):
    table, step = bigram
    tokens, scores = beam_search(step, tf.zeros([2, 3]), tf.zeros([2, 4]), tf.constant([4, 4]), beam_size=V ** 3,
                                 bos_id=BOS, eos_id=EOS, length_penalty=alpha, banned_ids=(0, BOS))
    score, seq = exhaustive(table, 4, alpha)
    assert scores.numpy() == pytest.approx([score, score], abs=1e-5)
    assert [t for t in tokens.numpy()[0] if t] == list(seq)


def test_greedy_takes_the_best_next_token_and_respects_limits(bigram):
    table, step = bigram
    tokens, _ = beam_search(step, tf.zeros([3, 1]), tf.zeros([3, 1]), tf.constant([6, 2, 1]), beam_size=1,
                            bos_id=BOS, eos_id=EOS, banned_ids=(0, BOS))
    tokens = tokens.numpy()
    expected, previous = [], BOS
    for _ in range(5):
        row = table[previous].copy()
        row[[0, BOS]] = -np.inf
        previous = int(np.argmax(row))
        if previous == EOS:
            break
        expected.append(previous)
    assert [t for t in tokens[0] if t] == expected
    assert np.count_nonzero(tokens[1]) <= 1  # 2 tokens allowed, the end token one of them
    assert np.count_nonzero(tokens[2]) == 0


def test_beam_score_is_never_below_greedy(bigram):
    _, step = bigram
    args = (step, tf.zeros([1, 1]), tf.zeros([1, 1]), tf.constant([7]))
    _, greedy = beam_search(*args, beam_size=1, bos_id=BOS, eos_id=EOS, banned_ids=(0,))
    _, beam = beam_search(*args, beam_size=4, bos_id=BOS, eos_id=EOS, banned_ids=(0,))
    assert beam.numpy()[0] >= greedy.numpy()[0] - 1e-6


def test_rows_with_their_own_beam_sizes_and_penalties_get_the_search_they_would_get_alone(bigram):
    """What TF Serving's batching needs: requests with different settings merged into one batch."""
    _, step = bigram
    settings = [(1, 0.0), (3, 1.0), (4, 0.5), (2, 1.0)]
    batched, batched_scores = beam_search(
        step, tf.zeros([4, 1]), tf.zeros([4, 1]), tf.constant([7] * 4), beam_size=tf.constant([b for b, _ in settings]),
        length_penalty=tf.constant([a for _, a in settings]), bos_id=BOS, eos_id=EOS, banned_ids=(0, BOS))
    for row, (beam, alpha) in enumerate(settings):
        alone, score = beam_search(step, tf.zeros([1, 1]), tf.zeros([1, 1]), tf.constant([7]), beam_size=beam,
                                   length_penalty=alpha, bos_id=BOS, eos_id=EOS, banned_ids=(0, BOS))
        length = alone.shape[1]
        assert list(batched.numpy()[row][:length]) == list(alone.numpy()[0])
        assert not batched.numpy()[row][length:].any()
        assert batched_scores.numpy()[row] == pytest.approx(score.numpy()[0], abs=1e-6)


def test_alignments_follow_the_chosen_hypothesis(bigram):
    """With `alignments`, each chosen token comes with the attention its step gave the memory."""
    table, _ = bigram
    memory_length = 3

    def step(tokens, states, context):  # attention: one-hot on (token mod 3), so it can be checked
        weights = tf.one_hot(tokens % memory_length, memory_length)
        return tf.gather(table, tokens) + 0.0 * context[:, :1, 0], states, weights

    memory = tf.zeros([2, memory_length, 1])
    tokens, scores, attention = beam_search(step, tf.zeros([2, 1]), memory, tf.constant([6, 6]), beam_size=3,
                                            bos_id=BOS, eos_id=EOS, banned_ids=(0, BOS), alignments=True)
    plain_tokens, plain_scores = beam_search(lambda t, s, c: step(t, s, c)[:2], tf.zeros([2, 1]), memory,
                                             tf.constant([6, 6]), beam_size=3, bos_id=BOS, eos_id=EOS,
                                             banned_ids=(0, BOS))
    np.testing.assert_array_equal(tokens.numpy(), plain_tokens.numpy())
    np.testing.assert_allclose(scores.numpy(), plain_scores.numpy())
    tokens, attention = tokens.numpy(), attention.numpy()
    assert attention.shape == (*tokens.shape, memory_length)
    for row in range(2):
        previous = [BOS] + [t for t in tokens[row] if t]  # the step that chose token i was fed token i - 1
        for i, token in enumerate(tokens[row]):
            if token:
                np.testing.assert_array_equal(attention[row, i], np.eye(memory_length)[previous[i] % memory_length])
            else:
                assert not attention[row, i].any()
