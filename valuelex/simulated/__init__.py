"""A simulated population of LLM respondents behind an OpenAI-compatible endpoint, with its planted truth.

The paper's pipeline has never met a planted truth before the incidence matrix (notebook 07
plants structure there). This package plants it in the **text** of the answers: K models x
decoding settings answer the elicitation prompts and the projective stems as respondents with
latent value scores on the taxonomy would, through the real ``openai`` client, ``LLMRunner`` and
store. Then every stage's output can be compared with what was planted.

* :mod:`.spec`: ``configs/simulated/population.yaml`` and its data files, checked;
* :mod:`.population`: the planted population (``Population``) and its answers (``Population.answer``);
* :mod:`.server`: the loopback server and ``SimulatedServer`` (a context manager like ``LlamaServer``; the
  runner starts the server of ``provider: simulated`` cards itself, :mod:`valuelex.llm.simulated`);
* :mod:`.configs`: model cards and panels of the population, as data (``write_configs``);
* :mod:`.recovery`: planted against recovered for the parser and the lexicon (``first_stages``);
* :mod:`.stages`: the same for every later stage, EFA, CFA, clusters, projective (``recover``).

The two recovery studies run the stages (the lexicon, the statistics), so they are imported from
their modules, not re-exported here (the population itself sits below the stages: ``tests/test_layers.py``).

``python -m valuelex.simulated --help`` lists the commands (configs, truth, serve, show, recover);
``docs/rehearsal.md`` says how to run a rehearsal against the server.
"""

from .configs import panel_respondents, write_configs
from .population import Answer, Ask, Population, SimModel
from .server import SimulatedServer
from .spec import DEFAULT_POPULATION, Spec, load_spec

__all__ = [
    "DEFAULT_POPULATION",
    "Answer",
    "Ask",
    "Population",
    "SimModel",
    "SimulatedServer",
    "Spec",
    "load_spec",
    "panel_respondents",
    "write_configs",
]
