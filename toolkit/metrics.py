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
