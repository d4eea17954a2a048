"""``python -m valuelex.simulated COMMAND``: the simulated population's cards, truth, server and recovery."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import paths
from ..core.errors import run_main
from .spec import DEFAULT_POPULATION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valuelex.simulated", description=__doc__)
    parser.add_argument("--population", type=Path, default=DEFAULT_POPULATION, help="population.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("configs", help="write the model cards and panels of the population")
    p.add_argument(
        "--port",
        type=int,
        help="cards for a server you start yourself on this port (`serve --port N`); default: provider simulated "
        "cards, whose server the run starts",
    )
    p.add_argument("--cards", type=Path, default=paths.CONFIGS / "simulated" / "models")
    p.add_argument("--panels", type=Path, default=paths.PANELS)
    p = sub.add_parser("truth", help="write the planted truth (words, models, stances, respondents) to a folder")
    p.add_argument("folder", type=Path)
    p.add_argument("--panel", default="paper", help="the panel shape whose respondents are written (default: paper)")
    p = sub.add_parser("serve", help="serve the population on 127.0.0.1 until Ctrl-C")
    p.add_argument("--port", type=int)
    p.add_argument("--answers-log", type=Path)
    p = sub.add_parser("show", help="print a few answers of one model")
    p.add_argument("model")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-tokens", type=int, default=256)
    p = sub.add_parser("recover", help="the recovery report of a run: every stage (notebooks 01-06), or --first")
    p.add_argument("run", help="the run file (a name under configs/runs/ or a path)")
    p.add_argument("--first", action="store_true", help="only the parser and the lexicon (notebooks 01 and 02)")
    args = parser.parse_args(argv)

    from .population import Ask, Population

    if args.command == "serve":
        from .server import main as serve_main

        extra = ["--port", str(args.port)] if args.port is not None else []
        extra += ["--answers-log", str(args.answers_log)] if args.answers_log else []
        return serve_main(["--population", str(args.population), *extra])
    population = Population.load(args.population)
    if args.command == "configs":
        from .configs import write_configs

        written = write_configs(population, args.cards, args.panels, args.port)
        served = "the run starts the server" if args.port is None else f"port {args.port}"
        print(f"wrote {len(written)} files: cards in {args.cards}, panels in {args.panels} ({served})")
    elif args.command == "truth":
        from .configs import panel_respondents

        if args.panel not in population.spec.panels:
            from ..core.errors import ConfigError

            known = ", ".join(population.spec.panels)
            raise ConfigError(f"{population.spec.path}: no panel shape {args.panel!r} (panels: {known})")
        written = population.write_truth(args.folder, panel_respondents(population, args.panel))
        print(f"wrote {len(written)} files to {args.folder}")
    elif args.command == "show":
        if args.model not in population.models:
            from ..core.errors import ConfigError

            raise ConfigError(
                f"no model {args.model!r} in {population.spec.path} (models: {population.model_names[0]} ...)"
            )
        m = population.models[args.model]
        system = population.spec.system_prompt or ""
        for prompt_id, text in list(population.spec.prompts.items())[:5]:
            if m.api == "chat":
                ask = Ask(args.model, "chat", system, text, args.temperature, args.top_p, args.seed, args.max_tokens)
            else:
                prompt = f"{system}\n\nQuestion: {text}\nAnswer:"
                ask = Ask(args.model, "completions", "", prompt, args.temperature, args.top_p, args.seed,
                          args.max_tokens, ("\nQuestion:",))  # fmt: skip
            answer = population.answer(ask)
            print(f"--- {prompt_id} ({answer.truth['form']}, {answer.finish_reason}) ---\n{answer.text}")
    elif args.command == "recover":
        from ..settings import load_run
        from ..stages import Run
        from .recovery import first_stages
        from .stages import recover

        run = Run.of(load_run(args.run))
        if args.first:
            print(first_stages(population, run.folders.processed, run.folders.raw, run.settings.lexicon))
        else:
            print(recover(population, run))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
