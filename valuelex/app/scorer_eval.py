"""Validate a projective-test scorer on a labelled set of completions (``valuelex scorer-eval``).

    python -m valuelex.app.scorer_eval --cases FILE                        # every case, default scorer, as shipped
    python -m valuelex.app.scorer_eval --cases configs/instruments/projective_labelled.csv --split test
    python -m valuelex.app.scorer_eval --cases LAB_FILE --part heldout     # the stem-hash held-out third
    python -m valuelex.app.scorer_eval --cases FILE --scorer embedding --part heldout --calibration fit

The command over :mod:`valuelex.projective.validation`, which does the work (notebook 06 validates its
scorers with it too) and describes the labelled file, the calibration, the stem split and the metrics.
A labelled file that cannot be read, or a choice that does not fit it, is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.errors import ConfigError
from ..core.io import save_table
from ..projective.instrument import DEFAULT_JUDGE
from ..projective.scorers import DEFAULT_SCORER, SCORERS
from ..projective.validation import PARTS, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="valuelex scorer-eval", description="Validate a projective scorer on labelled completions."
    )
    parser.add_argument("--cases", required=True, help="labelled file (JSON, JSONL or CSV)")
    parser.add_argument("--scorer", default=DEFAULT_SCORER, choices=list(SCORERS))
    parser.add_argument("--part", default="all", choices=list(PARTS),
                        help="all cases (default), or the stem-hash held-out / training part")  # fmt: skip
    parser.add_argument("--split", default=None, help="only the rows whose 'split' column has this value (dev, test)")
    parser.add_argument("--calibration", default="shipped", choices=["shipped", "fit"],
                        help="use the shipped head/calibration (default) or fit it on a stated training part")  # fmt: skip
    parser.add_argument("--method", default="exemplars", choices=["exemplars", "descriptions"],
                        help="embedding scorer: exemplar sentences (default) or the one-line descriptions (baseline)")  # fmt: skip
    parser.add_argument("--context", default="completion", choices=["completion", "stem+completion"],
                        help="embedding scorer: embed the completion alone (default) or with its stem")  # fmt: skip
    parser.add_argument("--judge-model", default=DEFAULT_JUDGE)
    parser.add_argument(
        "--judge-sample",
        type=int,
        default=0,
        help="a stratified sample of N cases (0 = all; the judge is slow locally)",
    )
    parser.add_argument("--mode", default="replay", choices=["replay", "live"], help="judge calls: replay or live")
    parser.add_argument("--store", type=Path, default=None,
                        help="judge store (default data/raw/judge for files under configs/instruments, else data/raw/judge_eval)")  # fmt: skip
    parser.add_argument("--ci", default="delong", choices=["delong", "bootstrap"])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--write-calibration", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for the metrics table (CSV + Markdown)")
    args = parser.parse_args(argv)
    try:
        table, info = run(
            args.cases,
            args.scorer,
            part=args.part,
            split=args.split,
            calibration=args.calibration,
            method=args.method,
            context=args.context,
            judge_model=args.judge_model,
            judge_sample=args.judge_sample,
            mode=args.mode,
            store_root=args.store,
            ci=args.ci,
            n_boot=args.n_boot,
            write_calibration=args.write_calibration,
            progress=True,
        )
    except (ValueError, ConfigError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(json.dumps(info, indent=1, default=str))
    shown = table[["subdimension", "n", "n_low", "accuracy", "balanced_accuracy", "roc_auc", "roc_auc_ci_low",
                   "roc_auc_ci_high", "macro_f1", "majority_accuracy", "ci_note"]]  # fmt: skip
    print(shown.to_markdown(index=False, floatfmt=".3f"))
    if args.out:
        name = f"scorer_eval_{args.scorer}"
        if args.scorer == "embedding":
            name += f"_{args.method}_{args.context.replace('+', '_')}"
        save_table(table, name, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
