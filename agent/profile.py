"""Machine profiles: how a kind of machine draws power, as validated data (agent/profiles/)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from agent.datafile import Range, Strict, load_model
from gateway.config import Ident, Machine, NonNeg, Positive
from gateway.errors import ConfigError

PROFILE_DIR = Path(__file__).parent / "profiles"

# Noise is a clipped normal: a sample never strays more than this many sigmas from its
# level, which is what lets a profile guarantee its states stay inside its thresholds.
NOISE_CLIP = 3.0

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
# Relative standard deviation of a level, per 1 s sample; 1/3 keeps level*(1 - 3 sigma) >= 0.
Noise = Annotated[float, Field(ge=0, lt=1 / NOISE_CLIP, allow_inf_nan=False)]


class Power(Strict):
    """[power]: watts at the machine's supply in each state."""

    off_w: NonNeg = 0.0  # main switch off: controller standby, contactor coils
    idle_w: NonNeg  # powered, not working: pumps, chiller, fans, spindle stopped
    idle_noise: Noise = 0.0
    run_w: Range  # each working segment draws one level from [low, high]
    run_noise: Noise = 0.0


class Inrush(Strict):
    """[inrush]: the short peak when a spindle or motor starts (each working segment)."""

    peak: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)]  # x the segment's level
    tau_s: Positive  # decays as exp(-t / tau_s)


class Heater(Strict):
    """[heater]: a thermostat load (heated bed) cycling on top of the running level."""

    w: Positive
    period_s: Positive
    duty: Fraction
    warmup_s: NonNeg = 0.0  # at the start of a job the heater is on without pause


class Cycle(Strict):
    """[cycle]: a job alternates working segments with pauses (tool or part changes)."""

    work_s: Range
    pause_s: Range

    @model_validator(mode="after")
    def _work_positive(self) -> Cycle:
        if self.work_s[0] < 1:
            raise ValueError(f"work_s ({list(self.work_s)}) must be at least 1 s")
        return self


class Schedule(Strict):
    """[schedule]: how generated shifts look; whole_shift, or jobs of job_s apart by between_s."""

    whole_shift: bool = False  # one job from shift start to end (a compressor cycling all day)
    job_s: Range = (0.0, 0.0)  # length of one job
    between_s: Range = (0.0, 0.0)  # idle time before, between and after jobs

    @model_validator(mode="after")
    def _jobs_or_shift(self) -> Schedule:
        if not self.whole_shift and self.job_s[0] < 1:
            raise ValueError(f"job_s ({list(self.job_s)}) must be at least 1 s")
        return self


class Electrical(Strict):
    """[electrical.idle] / [electrical.run]: waveform shape for simulated CT clamps."""

    power_factor: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    # Current harmonics by order, as a fraction of the fundamental's amplitude.
    harmonics: dict[Annotated[int, Field(ge=2, le=50)], Fraction] = Field(default_factory=dict)


class Supply(Strict):
    """[electrical]: the supply the machine hangs on."""

    voltage_v: Positive = 230.0  # line-to-neutral RMS
    phases: Annotated[int, Field(ge=1, le=3)] = 1
    frequency_hz: Annotated[float, Field(ge=45, le=65)] = 50.0
    idle: Electrical  # also used while off: the standby load has the same supply electronics
    run: Electrical


class Profile(Strict):
    """One profile file: a kind of machine."""

    id: Ident
    description: str = ""
    machine: Machine  # becomes the shop.toml [[machine]]: thresholds and cost figures
    power: Power
    inrush: Inrush | None = None
    heater: Heater | None = None
    cycle: Cycle | None = None  # none: a job is one working segment
    schedule: Schedule
    electrical: Supply

    @model_validator(mode="before")
    @classmethod
    def _machine_id(cls, data: Any) -> Any:
        # [machine] has shop.toml's keys; its id is the shop's business, default the profile's.
        if isinstance(data, dict) and isinstance(data.get("machine"), dict):
            data = {**data, "machine": {"id": data.get("id", "x"), **data["machine"]}}
        return data

    @property
    def peak_w(self) -> float:
        """The highest power a sample of this profile can reach."""
        noise = 1 + NOISE_CLIP * self.power.run_noise
        inrush = self.inrush.peak if self.inrush else 1.0
        return self.power.run_w[1] * noise * inrush + (self.heater.w if self.heater else 0.0)


def _problems(p: Profile) -> list[str]:
    """Cross-section rules: the simulated states must stay inside the suggested thresholds."""
    m, pw, out = p.machine, p.power, []
    idle_top = pw.idle_w * (1 + NOISE_CLIP * pw.idle_noise)
    run_bottom = pw.run_w[0] * (1 - NOISE_CLIP * pw.run_noise)
    if idle_top >= m.run_above_w:
        out.append(
            f"power.idle_w = {pw.idle_w}: with idle_noise {pw.idle_noise} idle reaches "
            f"{idle_top:.0f} W, not below machine.run_above_w ({m.run_above_w})"
        )
    if run_bottom <= m.run_above_w:
        out.append(
            f"power.run_w = {list(pw.run_w)}: with run_noise {pw.run_noise} running drops to "
            f"{run_bottom:.0f} W, not above machine.run_above_w ({m.run_above_w})"
        )
    if pw.off_w >= m.off_below_w:
        out.append(f"power.off_w = {pw.off_w}: not below machine.off_below_w ({m.off_below_w})")
    if p.peak_w > m.rated_w:
        out.append(
            f"machine.rated_w = {m.rated_w}: below the profile's peak {p.peak_w:.0f} W "
            "(run_w high x noise x inrush peak + heater); the gateway would reject it"
        )
    # Running samples around a pause of p seconds are p + 1 s apart.
    if p.cycle and p.cycle.pause_s[1] + 1 >= m.merge_gap_s:
        out.append(
            f"cycle.pause_s = {list(p.cycle.pause_s)}: pauses must be shorter than "
            f"machine.merge_gap_s ({m.merge_gap_s}) - 1 s or one job is detected as several"
        )
    if p.schedule.whole_shift:
        return out
    if p.schedule.between_s[0] <= m.merge_gap_s:
        out.append(
            f"schedule.between_s = {list(p.schedule.between_s)}: the gap between jobs must be "
            f"longer than machine.merge_gap_s ({m.merge_gap_s}) or two jobs merge into one"
        )
    if p.schedule.job_s[0] < m.min_job_s:
        out.append(
            f"schedule.job_s = {list(p.schedule.job_s)}: jobs shorter than machine.min_job_s "
            f"({m.min_job_s}) are not detected"
        )
    return out


def load_profile(path: str | Path) -> Profile:
    """Load and check one profile file; raises ConfigError naming file, key and value."""
    source = Path(path)
    profile = load_model(source, Profile)
    problems = _problems(profile)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return profile


@cache
def builtin_profile(name: str) -> Profile:
    """A profile shipped in agent/profiles/ by its id ('cnc-mill', 'fdm-printer', ...)."""
    path = PROFILE_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(builtin_profile_names())
        raise ConfigError(f"no machine profile {name!r} (known: {known})")
    profile = load_profile(path)
    if profile.id != name:
        raise ConfigError(f"{path}: id = {profile.id!r}: must match the file name ({name!r})")
    return profile


def builtin_profile_names() -> list[str]:
    """Ids of the shipped profiles, sorted."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))
