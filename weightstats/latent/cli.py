"""``weightstats latent SPEC``: the command's options and body (the hook lives in
``weightstats.cli``). Only click is imported here, so ``weightstats --help`` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def latent_options(whole: click.ParamType, families_option: type[click.Option],
                   shared: list[Any]) -> Any:
    """The options of ``weightstats latent``; ``whole``, ``families_option`` and ``shared`` (the
    KS, seed, output and trust options every report-writing command has) come from the main CLI
    (passed in: no import circle)."""
    WHOLE, _FamiliesOption = whole, families_option
    opts = [
        click.option("--data", default=None, metavar="FOLDER",
                     help="Folder of images to encode (needed for hf: VAEs; default for "
                          "digits-vae: the held-out load_digits split)."),
        click.option("--samples", type=WHOLE, default=8, show_default=True,
                     help="Draws z ~ q(z|x) per input (seeded)."),
        click.option("--image-size", type=WHOLE, default=None,
                     help="Image side for --data [default: the VAE config's sample_size]."),
        click.option("--families", cls=_FamiliesOption, default=None, metavar="LIST"),
        click.option("--active-threshold", type=float, default=0.01, show_default=True,
                     help="Active unit: Var_x E[z_d|x] above this (Burda et al. 2016)."),
        click.option("--max-components", type=WHOLE, default=6, show_default=True,
                     help="Largest K of the Gaussian mixtures compared by BIC."),
        *shared,
    ]

    def decorate(f: Any) -> Any:
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


def run_latent_command(spec: str, opts: dict[str, Any], console: Any) -> None:
    """Encode, test, print the answer and a per-dimension table (on the rich ``console``),
    write the report; ``--out`` was checked by the caller."""
    from rich.table import Table
    from rich.text import Text

    from weightstats.latent.fit import fit_latents
    from weightstats.report.tables import check_outputs
    from weightstats.text import terminal

    formats = opts["formats"].split(",")
    check_outputs(formats, plots=not opts["no_plots"])
    rep = fit_latents(spec, opts["data"], samples=opts["samples"], seed=opts["seed"],
                      families=opts["families"], active_threshold=opts["active_threshold"],
                      ks_sample=opts["ks_sample"], ks_replicates=opts["ks_replicates"],
                      max_components=opts["max_components"], image_size=opts["image_size"],
                      allow_pickle=opts["allow_pickle"], _flags=True)
    table = Table(title=Text(f"{terminal(rep.model)}: aggregate posterior per {rep.unit}"),
                  title_justify="left")
    for col in ("dim", "active", "Var_x E(z|x)", "mean", "std", "KS p vs N(0,1)", "KL", "best"):
        table.add_column(col, justify="right")
    for r in rep.rows:
        cells = [str(r["dim"]), "yes" if r["active"] else "no", f"{r['var_mu']:.3g}",
                 f"{r['mean']:.3g}", f"{r['std']:.3g}", f"{r['prior_ks_pvalue']:.3g}",
                 f"{r['kl']:.3g}", r["best_z"] or r["fit_z"]]
        table.add_row(*[Text(terminal(c)) for c in cells])
    console.print(table)
    console.print(Text(terminal(rep.summary().text), style="bold"), highlight=False)
    out = opts["out"] or Path("reports") / "latent" / rep.model
    path = rep.save(out, formats, plots=not opts["no_plots"])
    console.print(f"report written to {terminal(path)}/", highlight=False, soft_wrap=True,
                  markup=False)


__all__ = ["latent_options", "run_latent_command"]
