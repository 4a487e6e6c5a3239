"""The run report: what a generation ran with and what it measured, written and read by one schema.

Every generation writes one (``report.json``, docs/design.md section 2). The CLI's
``generate --from-report`` and the app read it back through ``RunReport.read`` (validated: a
hand-edited report with a wrong field is refused in one line naming it). Values are plain JSON:
rounded floats, lists per frame, no NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from starvid.errors import StarVidError, first_problem
from starvid.plan import Plan
from starvid.settings import GenerationSettings

REPORT_MAX_BYTES = 50 * 2**20  # a report of a 512-frame run is a few MB


class LossRow(BaseModel):
    """One gradient iteration of the guidance: each term raw (unweighted) and weighted, and
    ``total``, the sum of the weighted terms. The first iteration of each guided step also has
    each term's share of the latent update (``*_share``, summing to 1) and its pull (``*_pull``:
    the RMS of its part of the update in step-size units; with ``normalize_grad="per_term"`` a
    term that acts pulls with its weight): a term that cannot act (zero weight, or a saturated
    loss whose gradient vanishes) shows a pull of about 0. ``update_size`` is the RMS of the
    update the iteration made, in step-size units before the noise-level factor (``per_term``:
    the first iteration's weighted pull, held by the later ones; ``rms``: 1; smaller when
    ``max_grad_norm`` clipped it; absent when the update was skipped)."""

    model_config = ConfigDict(extra="forbid")

    step: int
    iteration: int
    spatial: float
    syntax: float
    total: float
    spatial_raw: float = 0.0
    syntax_raw: float = 0.0
    spatial_share: float | None = None
    syntax_share: float | None = None
    spatial_pull: float | None = None
    syntax_pull: float | None = None
    update_size: float | None = None


class ObjectReport(BaseModel):
    """Per plan object: in-box attention share per frame, by run ("guided", "baseline")."""

    model_config = ConfigDict(extra="forbid")

    id: str
    noun: str
    inbox_share: dict[str, list[float | None]]
    inbox_share_final: dict[str, list[float | None]]


class RunReport(BaseModel):
    """The report of one run (guided, and the same-seed baseline when it ran)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    backbone: str = Field(min_length=1)
    seed: int = Field(ge=0)
    settings: GenerationSettings
    plan: Plan
    losses: list[LossRow] = Field(default_factory=list)
    objects: list[ObjectReport] = Field(default_factory=list)
    timing_s: dict[str, float] = Field(default_factory=dict)
    peak_memory_mb: dict[str, float] = Field(default_factory=dict)
    working_memory_mb: dict[str, float] = Field(default_factory=dict)
    frames: int = Field(ge=1)
    fps: int = Field(8, ge=1, le=240)
    warnings: list[str] = Field(default_factory=list)

    @field_validator("timing_s", "peak_memory_mb", "working_memory_mb")
    @classmethod
    def _finite(cls, v: dict[str, float]) -> dict[str, float]:
        return {k: (x if math.isfinite(x) else 0.0) for k, x in v.items()}

    @property
    def has_baseline(self) -> bool:
        """Whether a same-seed baseline ran."""
        return "baseline" in self.timing_s

    def share_means(self, key: str = "inbox_share") -> dict[str, dict[str, float]]:
        """Object id -> run -> mean over frames of the in-box share (what the app's chart shows)."""
        out = {}
        for obj in self.objects:
            values = getattr(obj, key)
            out[obj.id] = {
                run: sum(v for v in vals if v is not None) / max(1, len(vals))
                for run, vals in values.items()
            }
        return out

    def to_json(self) -> str:
        """The report as indented JSON text."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> RunReport:
        """Read and validate a report file; errors name the file and the field."""
        path = Path(path)
        try:
            if path.stat().st_size > REPORT_MAX_BYTES:
                raise StarVidError(f"{path} is too large for a run report")
            text = path.read_bytes()
        except OSError as exc:
            raise StarVidError(f"cannot read report {path}: {exc.strerror or exc}") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str | bytes, name: str = "report") -> RunReport:
        """Validate report JSON text."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise StarVidError(f"{name} is not JSON: {str(exc)[:120]}") from exc
        if not isinstance(data, dict) or not {"prompt", "plan", "settings"} <= set(data):
            raise StarVidError(f"{name} is not a run report (it needs prompt, plan and settings)")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            where, what = first_problem(exc)
            raise StarVidError(f"{name}: invalid field {where}: {what}") from exc
