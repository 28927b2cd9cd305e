"""Scores computed from predictions: accuracy and the confusion matrix."""


def classification_report(true_labels, predicted_labels, class_names):
    """Accuracy, and a confusion matrix with rows = true class, columns = predicted class."""
    if len(true_labels) != len(predicted_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions")
    index = {name: i for i, name in enumerate(class_names)}
    matrix = [[0] * len(class_names) for _ in class_names]
    for truth, guess in zip(true_labels, predicted_labels):
        matrix[index[truth]][index[guess]] += 1
    correct = sum(matrix[i][i] for i in range(len(class_names)))
    return {"accuracy": correct / max(len(true_labels), 1), "class_names": list(class_names),
            "confusion_matrix": matrix}


def translation_scores(hypotheses, references):
    """Corpus BLEU and chrF with sacreBLEU's defaults (13a tokenisation, cased) on detokenised text.

    `references[i]` lists the reference sentences of `hypotheses[i]`; every sentence needs as
    many references as the others (5 per image for captions, 1 for translation).
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    counts = {len(r) for r in references}
    if len(counts) != 1:
        raise ValueError(f"every sentence needs the same number of references. Received counts: {sorted(counts)}")
    streams = [list(stream) for stream in zip(*references)]
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(hypotheses, streams)
    return {"bleu": round(b.score, 2), "chrf": round(chrf.corpus_score(hypotheses, streams).score, 2),
            "bleu_precisions": [round(p, 1) for p in b.precisions], "brevity_penalty": round(b.bp, 3),
            "bleu_signature": str(bleu.get_signature())}


def caption_scores(hypotheses, references):
    """Corpus BLEU-1..4 (sacreBLEU) and CIDEr-D (pycocoevalcap) of captions against their references.

    Both sides are first standardised as captions are learnt (`caption_standardize`: lower case,
    punctuation removed, words separated by one space), which is the tokenisation: sacreBLEU then
    splits on spaces only (`tokenize="none"`), and CIDEr-D reads the same words. BLEU-n is the
    brevity-penalised geometric mean of the 1..n-gram precisions, counted against all references
    of an image at once (images may have different numbers of references).
    """
    import sacrebleu
    from pycocoevalcap.cider.cider import Cider

    from toolkit.preprocessing.sequences import caption_standardize

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if not hypotheses:
        raise ValueError("no captions to score")
    standardize = lambda texts: [t.decode("utf-8") for t in caption_standardize(list(texts)).numpy()]  # noqa: E731
    hypotheses = standardize(hypotheses)
    references = [standardize(refs) for refs in references]
    most = max(len(refs) for refs in references)
    streams = [[refs[j] if j < len(refs) else None for refs in references] for j in range(most)]
    report = {}
    for n in range(1, 5):
        bleu = sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize="none")
        result = bleu.corpus_score(hypotheses, streams)
        report[f"bleu_{n}"] = round(result.score, 2)
    report["brevity_penalty"] = round(result.bp, 3)
    report["bleu_signature"] = str(bleu.get_signature())
    # CIDEr-D (Vedantam et al., 2015): TF-IDF-weighted 1-4-gram cosine similarity with clipping and a
    # length penalty; pycocoevalcap's `Cider` is CIDEr-D. Reported x100, as papers print it.
    cider, _ = Cider().compute_score({i: refs for i, refs in enumerate(references)},
                                     {i: [h] for i, h in enumerate(hypotheses)})
    report["cider_d"] = round(float(cider) * 100, 2)
    report["mean_words"] = round(sum(len(h.split()) for h in hypotheses) / len(hypotheses), 2)
    return report
