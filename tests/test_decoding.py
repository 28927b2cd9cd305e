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
