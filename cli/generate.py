"""`toolkit generate`: continue a text with a language model, one sampled word at a time (one-to-many)."""

import click

from cli import options
from cli.output import echo_answer


@click.command()
@click.argument("prompt")
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="A language model's run folder (its best epoch), an exported one's name or folder. "
                   "Default: the model named review_lm in the model folders (none ships yet: export yours "
                   "as review_lm).")
@click.option("--words", type=click.IntRange(min=0, max=1000), default=40, show_default=True,
              help="Words to add.")
@click.option("--temperature", type=options.FiniteFloat(min=0, min_open=True), default=1.0, show_default=True,
              help="Below 1: likelier, duller words; above 1: more surprising ones.")
@click.option("--top-k", type=click.IntRange(min=0), default=40, show_default=True,
              help="Draw each word from the K likeliest only (0: from the whole vocabulary).")
@click.option("--samples", type=click.IntRange(min=1, max=100), default=1, show_default=True,
              help="Continuations to draw, one per line.")
@click.option("--seed", type=int, default=None, help="Draw the same words again.")
@options.json_output
def generate(prompt, model_path, words, temperature, top_k, samples, seed, as_json):
    """Continue PROMPT with words sampled from a language model (`toolkit train language-model`): a check
    that it learnt English. It writes the words it reads: lower case, without punctuation.

    \b
      toolkit generate "The film"
      toolkit generate "I expected" --model runs/lm --temperature 0.7 --samples 3 --seed 1
    """
    import numpy as np

    from toolkit.runtime import import_tensorflow
    from toolkit.tasks import language_model

    import_tensorflow()  # quietly

    model = language_model.load(model_path or language_model.SHIPPED_MODEL)
    seeds = np.random.SeedSequence(seed).spawn(samples)
    for i in range(samples):
        answer = model.generate(prompt, words=words, temperature=temperature, top_k=top_k,
                                seed=np.random.default_rng(seeds[i]))
        echo_answer(answer, f"{answer['prompt']} {answer['continuation']}".strip(), as_json)
