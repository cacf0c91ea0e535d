"""Before an engine step starts: the doctor's checks that step depends on, so that a broken
installation answers 424 with the fix instead of a run that fails minutes later.

Cheap only (milliseconds): file presence and sizes, the checkout, free disk, and the engine
probe's CACHED result. The probe itself (seconds: it imports torch) never runs here; when nothing
was probed yet, it is started in the background and the step goes ahead."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gsv_service import doctor_checks as dc
from gsv_service import model_names
from gsv_service.doctor_checks import Check
from gsv_service.engine import Engine
from gsv_service.engine_install import plan
from gsv_service.engine_install.presence import Presence, check_path
from gsv_service.errors import DependencyMissing
from gsv_service.probe import ProbeCache
from gsv_service.settings import Settings
from gsv_service.steps.base import AnyStep, StepParams
from gsv_service.task_config import TaskConfig

MODEL_ROLES = ("bert", "cnhubert", "sv", "s2G", "s2D", "s1")
OVERRIDABLE = ("s2G", "s2D", "s1")  # a step's params may name its own base weights: pretrained_{role}
DOCTOR_URL = "/api/v1/engine/doctor"


def step_languages(cfg: TaskConfig, params: StepParams | None) -> list[str]:
    """The task's language and those the step's params add (inference: target and reference)."""
    langs: list[str] = [cfg.language]
    for field in ("target_language", "ref_language"):
        value = getattr(params, field, None)
        if value and value not in langs:
            langs.append(value)
    return langs


class Preflight:
    def __init__(self, settings: Settings, engine: Engine | None, probe: ProbeCache):
        self.settings = settings
        self.engine = engine
        self.probe = probe

    def problems(self, spec: AnyStep, cfg: TaskConfig, params: StepParams | None = None) -> list[Check]:
        """The failing checks that would make this step fail; [] when it may start."""
        if not spec.needs_engine or self.engine is None:
            return []
        engine, needs, version = self.engine, spec.engine_needs, cfg.model_version
        langs = step_languages(cfg, params)
        checks = [dc.check_checkout(self.settings), dc.check_writable(engine, write=False),
                  self._models(spec, version, langs, params)]
        checks += [dc.check_item(engine, key, version, langs) for key in ("g2pw", "langdetect")
                   if key in needs and dc.needed(key, version, langs)]
        if "ffmpeg" in needs:
            checks.append(dc.check_ffmpeg())
        if "disk" in needs:
            checks.append(dc.check_disk(self.settings))
        probe = self.probe.cached()
        if probe is None:
            self.probe.start_background()  # the next submission will know
        else:
            checks.append(dc.check_packages(probe))
            if spec.needs_gpu:
                checks.append(dc.check_cuda(self.settings, probe, cfg.batch_size))
            if "nltk" in needs:
                checks.append(dc.check_nltk(probe, version, langs))
        return [c for c in checks if c is not None and c.status == "fail"]

    def require(self, spec: AnyStep, cfg: TaskConfig, params: StepParams | None = None) -> None:
        """Raise the 424 that names every failing check with its fix."""
        failed = self.problems(spec, cfg, params)
        if failed:
            raise refusal(spec.name, failed)

    def _models(self, spec: AnyStep, version: str, langs: list[str], params: StepParams | None) -> Check | None:
        """pretrained_{version}, limited to the files this step reads (params' own paths first)."""
        engine = self.engine
        if engine is None:  # problems() asks only with an engine
            return None
        wanted: list[tuple[plan.ModelItem, Path, str | None]] = []
        for role in spec.engine_needs:
            if role not in MODEL_ROLES:
                continue
            key = dc.item_key(role, version)
            if key not in plan.BY_KEY or not dc.needed(key, version, langs):
                continue
            item = plan.BY_KEY[key]
            given = getattr(params, f"pretrained_{role}", None) if role in OVERRIDABLE else None
            path = _given_path(engine, given, role) if given else dc.item_path(engine, item)
            wanted.append((item, path, f"params.pretrained_{role}" if given else None))
        bad = [(item, pres, field) for item, path, field in wanted if not (pres := check_path(item, path)).ok]
        if not bad:
            return None
        text = (f"{version}: " + "; ".join(_describe(item, pres, field) for item, pres, field in bad))
        fix = dc.model_fix([(item, pres) for item, pres, field in bad if field is None]) \
            if any(field is None for _, _, field in bad) else \
            "give the step a path on the server that holds the weights, or leave the param out to use " \
            "the version's pretrained file"
        return dc.check(f"pretrained_{version}", "fail", text, fix)


def _given_path(engine: Engine, value: str, role: str) -> Path:
    """A model param, resolved inside the pretrained folder (model_names; checked at submit). One
    that is not there reads as missing, without saying where it pointed."""
    try:
        return model_names.resolve(engine.pretrained_root, value, f"pretrained_{role}")
    except model_names.ModelNameRejected:
        return engine.pretrained_root / "(no such model)"


def _describe(item: plan.ModelItem, pres: Presence, field: str | None) -> str:
    text = dc.describe_problem(item, pres)
    return f"{text} (the step's {field})" if field else text


def refusal(step: str, failed: Iterable[Check]) -> DependencyMissing:
    failed = list(failed)
    parts = [f"{c.name}: {c.found}. Fix: {c.fix}" for c in failed]
    return DependencyMissing(
        f"step '{step}' cannot start: the engine installation fails {len(failed)} check(s) it needs. "
        + " | ".join(parts) + f" (every check: GET {DOCTOR_URL})",
        step=step, check=failed[0].name, fix=failed[0].fix, checks=[c.model_dump() for c in failed])
