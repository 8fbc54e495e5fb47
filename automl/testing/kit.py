"""Helpers for a plugin's own tests: a hermetic host, a domain's data prepared as a run prepares it, sampled
configurations of a model family.

    from automl.testing import plugin_host, prepare_domain, sample_params

    host = plugin_host(my_plugin, "claims")               # the built-in plugin and yours, nothing else
    data = prepare_domain(host, ["domain=claims"])         # config composed, data prepared, search planned
    device_data = data.bind()                              # the pipeline's DeviceData, on the CPU
    params = sample_params(MY_FAMILY, data.prepared.info)  # a configuration as the search samples it
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from automl.config import RunConfig
    from automl.host import PluginHost
    from automl.pipeline import DeviceData, Prepared
    from automl.plan import Plan, Resolution
    from automl.specs import ModelFamily


def plugin_host(plugin: Any, name: str) -> "PluginHost":
    """A host with the built-in plugin and `plugin` (registered in-process as `name`): installed plugins
    cannot change what a test sees."""
    from automl.host import PluginHost

    return PluginHost(entry_points=False, plugins=[(name, plugin)])


@dataclass
class DomainData:
    """A domain's data as a run prepares it: the composed config, the resolution, the prepared data, the plan."""

    cfg: "RunConfig"
    resolution: "Resolution"
    prepared: "Prepared"
    plan: "Plan"

    @property
    def pipeline(self) -> Any:
        return self.resolution.pipeline

    def bind(self, device: str = "cpu") -> "DeviceData":
        """The prepared arrays on `device`, as trials see them."""
        import torch

        return self.pipeline.bind(self.prepared, torch.device(device))


def prepare_domain(host: "PluginHost", overrides: Iterable[str] = (),
                   frame: Optional["pd.DataFrame"] = None) -> DomainData:
    """Compose the config from `overrides` (as the command line does), then resolve, prepare and plan exactly
    as a run does (`automl.plan`)."""
    from automl.compose import compose
    from automl.config import RunConfig
    from automl.plan import resolve

    cfg = RunConfig.from_container(compose(host, list(overrides)))
    resolution = resolve(cfg, host)
    prepared = resolution.prepare(cfg, host, frame)
    return DomainData(cfg, resolution, prepared, resolution.plan(cfg, host, prepared.info))


def sample_params(family: "ModelFamily", info: Any, seed: int = 0, n: int = 1) -> list[dict[str, Any]]:
    """`n` configurations of `family`, sampled at random as a search samples them (names namespaced)."""
    import optuna

    from automl.search.context import FamilyTrial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(family.search_space(FamilyTrial(trial, family.name), info))
        if not all(name.startswith(f"{family.name}.") for name in trial.params):
            raise AssertionError(f"{family.name}: parameter names are not namespaced: {sorted(trial.params)}")
    return out
